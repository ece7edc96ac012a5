// The canary-router dashboard: polls /api/state and draws it; the buttons
// post to /api/actions/{name}. Plain DOM, no framework: the binary embeds
// this file as it is.
"use strict";

const POLL_MS = 2000;
const HISTORY = 30; // gate measurements kept per gate, since the page opened
const history = new Map(); // gate name -> [{at, value, verdict}]
let busy = false;

const $ = (sel) => document.querySelector(sel);

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else if (k in e) e[k] = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : String(c ?? ""));
  return e;
}

function rows(table, list, row) {
  const body = $(table + " tbody");
  body.replaceChildren(...list.map(row));
  return list.length;
}

// weightsText writes weights as `rollout status` does: stable=90 canary=10.
function weightsText(w) {
  return (w || []).map((t) => `${t.revision}=${t.weight}`).join(" ");
}

function sameWeights(a, b) {
  return weightsText(a) === weightsText(b);
}

function ago(iso) {
  if (!iso || iso.startsWith("0001")) return "";
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (s < 90) return `${s}s ago`;
  if (s < 5400) return `${Math.round(s / 60)}m ago`;
  return `${Math.round(s / 3600)}h ago`;
}

function clock(iso) {
  return iso ? new Date(iso).toISOString().replace("T", " ").slice(0, 19) : "";
}

function pct(share) {
  return `${Math.round(share * 1000) / 10}%`;
}

function drawSummary(d) {
  const r = d.rollout;
  const steps = d.plan ? d.plan.steps.length : 0;
  $("#rollout-id").textContent = r ? `${r.id}, attempt ${r.attempt + 1}` : "";
  const phase = $("#phase");
  phase.textContent = r ? r.phase : "no rollout";
  phase.className = "phase " + (r ? r.phase : "");
  $("#phase-since").textContent = r ? `since ${clock(r.lastTransition)} (${ago(r.lastTransition)})` : "";
  $("#step").textContent = r ? r.step + 1 : "–";
  $("#step").dataset.step = r ? r.step + 1 : "";
  $("#step-of").textContent = r && steps ? `of ${steps}, last passed: ${r.lastPassed + 1}` : "";
  $("#weights").textContent = r ? weightsText(r.weights) : "the policy's own";
  $("#reason").textContent = (r && r.reason) || "–";
  const op = [];
  if (d.paused) op.push(`held: ${d.pauseReason || "paused"}`);
  if (d.pendingRequest) op.push(`${d.pendingRequest} pending (not yet acted on by the leader)`);
  $("#operator").textContent = op.join("; ") || "–";
}

// drawActions keeps one button per command, disabled with the reason in
// its tooltip; the reasons are also listed under the buttons, once each
// (without RBAC every button shares one).
function drawActions(actions) {
  const box = $("#actions");
  const reasons = new Map(); // reason -> names
  for (const a of actions) {
    let b = box.querySelector(`button[data-action="${a.name}"]`);
    if (!b) {
      b = el("button", { "data-action": a.name, id: `action-${a.name}`, class: a.name === "abort" ? "danger" : "" }, a.name[0].toUpperCase() + a.name.slice(1));
      b.addEventListener("click", () => act(a.name));
      box.insertBefore(b, $("#pause-reason"));
    }
    b.disabled = busy || !a.enabled;
    b.title = a.reason || "";
    if (!a.enabled) reasons.set(a.reason, [...(reasons.get(a.reason) || []), a.name]);
  }
  $("#why").replaceChildren(...[...reasons].map(([why, names]) => el("li", {}, `${names.join(", ")}: ${why}`)));
}

async function act(name) {
  if (name === "abort" && !confirm("Abort the rollout? The canary goes back to weight 0 and the migration moves its workloads back.")) return;
  busy = true;
  const out = $("#action-result");
  out.textContent = `${name}…`;
  try {
    const res = await fetch(`api/actions/${name}`, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-Canary-Router-Dashboard": "1" },
      body: JSON.stringify({ reason: $("#pause-reason").value }),
    });
    const body = await res.json();
    out.textContent = res.ok ? body.message : `${name} failed (${res.status}): ${body.error}`;
    out.className = res.ok ? "muted" : "bad";
  } catch (e) {
    out.textContent = `${name} failed: ${e}`;
    out.className = "bad";
  } finally {
    busy = false;
    poll();
  }
}

function drawPlan(d) {
  const r = d.rollout;
  if (!d.plan) {
    rows("#plan", [], () => null);
    $("#plan-note").textContent = "The policy cannot be read, or has no rollout block.";
    return;
  }
  rows("#plan", d.plan.steps, (s, i) => {
    let state = "pending";
    if (r && i <= r.lastPassed) state = "passed";
    if (r && i === r.step) state = r.phase;
    return el("tr", { class: r && i === r.step ? "current" : "", "data-step": i + 1 },
      el("td", {}, i + 1), el("td", {}, weightsText(s.weights)),
      el("td", {}, s.manual ? "manual (promote)" : i === d.plan.steps.length - 1 && s.hold === "0s" ? "–" : s.hold), el("td", {}, state));
  });
  let note = `Canary revision: ${d.plan.canary}; on failure ${d.plan.onFailure}; gates every ${d.plan.interval}; policy targets ${weightsText(d.plan.targets)}.`;
  const planned = r && d.plan.steps[r.step];
  if (planned && !sameWeights(planned.weights, r.weights)) {
    note += ` The weights in force (${weightsText(r.weights)}) are not step ${r.step + 1}'s (${weightsText(planned.weights)}).`;
  }
  $("#plan-note").textContent = note;
}

function spark(list) {
  const top = Math.max(1e-9, ...list.map((h) => Math.abs(h.value)));
  return el("span", { class: "spark", title: list.map((h) => `${clock(h.at)} ${h.value} ${h.verdict}`).join("\n") },
    ...list.map((h) => {
      const bar = el("i", { class: h.verdict === "pass" ? "" : h.verdict });
      bar.style.height = `${Math.max(10, (Math.abs(h.value) / top) * 100)}%`;
      return bar;
    }));
}

function drawGates(d) {
  const r = d.rollout;
  const gates = (r && r.gates) || [];
  const limits = new Map(((d.plan && d.plan.gates) || []).map((g) => [g.name, g.threshold]));
  $("#gates-measured").textContent = r && r.lastMeasured ? `measured ${clock(r.lastMeasured)} (${ago(r.lastMeasured)})` : "not measured yet";
  for (const g of gates) {
    const h = history.get(g.name) || [];
    if (!h.length || h[h.length - 1].at !== r.lastMeasured) h.push({ at: r.lastMeasured, value: g.value, verdict: g.verdict });
    history.set(g.name, h.slice(-HISTORY));
  }
  rows("#gates", gates, (g) => el("tr", { "data-gate": g.name },
    el("td", {}, g.name),
    el("td", { class: g.verdict === "pass" ? "good" : g.verdict === "fail" ? "bad" : "warn" }, g.verdict),
    el("td", {}, g.value),
    el("td", {}, `${(r.failures || {})[g.name] || 0}/${(g.failureLimit || 0) + 1}`),
    el("td", {}, limits.get(g.name) || ""),
    el("td", {}, spark(history.get(g.name) || [])),
    el("td", {}, g.message || "")));
}

function drawMigration(d) {
  const m = d.migration || {};
  const facts = [
    ["Phase", (m.phase || "not started") + (d.migrationPaused ? ` (paused: ${d.migrationPauseReason})` : "")],
    ["This step's plan", `${m.done || 0} of ${m.total || 0} workloads moved, ${m.pending || 0} pending, ${m.skipped || 0} skipped`],
    ["Batches", `${m.batches || 0} done` + (m.batch ? `, batch ${m.batch.index + 1} in flight since ${clock(m.batch.started)}` : "")],
    ["Restarted", m.restarted || 0],
  ];
  $("#migration").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
  $("#batch").hidden = !rows("#batch", (m.batch && m.batch.workloads) || [], (w) => el("tr", {},
    el("td", {}, w.namespace), el("td", {}, `${w.kind}/${w.name}`), el("td", {}, w.to || "split"), el("td", {}, w.why)));
  $("#failures").hidden = !rows("#failures", m.failures || [], (f) => el("tr", { class: "bad" },
    el("td", {}, `${f.namespace}/${f.kind}/${f.name}`), el("td", {}, f.reason), el("td", {}, clock(f.time))));
}

function drawPods(d) {
  const c = d.cluster;
  const revs = (c && c.revisions) || [];
  rows("#revisions", revs, (v) => el("tr", { "data-revision": v.revision, class: v.mismatchedPods ? "bad" : "" },
    el("td", {}, v.revision + (v.tagOf ? ` → ${v.tagOf}` : "")),
    el("td", {}, v.inPolicy ? pct(v.targetShare) : "–"),
    el("td", {}, pct(v.observedShare)),
    el("td", { "data-field": "routed" }, v.routedPods),
    el("td", { "data-field": "injected" }, v.injectedPods),
    el("td", { "data-field": "mismatched" }, v.mismatchedPods)));
  $("#mismatches").hidden = !rows("#mismatches", (c && c.mismatches) || [], (m) => el("tr", { class: "bad" },
    el("td", {}, m.routedRevision), el("td", {}, m.injectedRevision || "none (no sidecar)"), el("td", {}, m.pods)));
  $("#stale-pins").hidden = !rows("#stale-pins", (c && c.stalePins) || [], (p) => el("tr", { class: "bad", title: "new pods of this workload are refused, or run without a sidecar" },
    el("td", {}, p.namespace), el("td", {}, p.workload), el("td", {}, p.revision), el("td", {}, p.state), el("td", {}, p.pods)));
  rows("#workloads", d.workloads || [], (w) => {
    const counts = Object.entries(w.pods).sort().map(([rev, n]) => `${rev || "no sidecar"}: ${n}`).join(", ");
    const bad = w.managed && w.unmeshed > 0;
    return el("tr", { class: bad ? "bad" : "", title: bad ? "pods without a sidecar in a managed namespace" : "" },
      el("td", {}, w.namespace + (w.managed ? "" : " (unmanaged)")), el("td", {}, `${w.kind}/${w.name}`), el("td", {}, counts));
  });
}

// drawTimeline shows the rollout's conditions (kept in the status
// object, however old) above its Events (which the API server expires).
function drawTimeline(d) {
  const conds = (d.rollout && d.rollout.conditions) || [];
  rows("#conditions", conds, (c) => el("tr", { class: c.status === "True" ? "" : "warn" },
    el("td", {}, c.type), el("td", {}, c.status), el("td", {}, clock(c.lastTransitionTime)), el("td", {}, c.reason), el("td", {}, c.message)));
  rows("#timeline", [...(d.events || [])].reverse(), (e) => el("tr", { class: e.type === "Warning" ? "bad" : "" },
    el("td", {}, clock(e.time)), el("td", {}, e.reason + (e.count > 1 ? ` ×${e.count}` : "")), el("td", {}, e.message)));
}

function draw(d) {
  drawSummary(d);
  drawActions(d.actions || []);
  drawPlan(d);
  drawGates(d);
  drawMigration(d);
  drawPods(d);
  drawTimeline(d);
  const w = $("#warnings");
  w.hidden = !(d.warnings && d.warnings.length);
  w.replaceChildren(...(d.warnings || []).map((t) => el("div", {}, t)));
  $("#updated").textContent = `${d.namespace}, read ${clock(d.time)} UTC`;
  document.body.dataset.loaded = "true";
}

async function poll() {
  let body;
  try {
    const res = await fetch("api/state", { cache: "no-store" });
    body = await res.json();
    if (!res.ok) throw new Error(body.error || res.statusText);
  } catch (e) {
    // The last state stays on screen, as rollout status --watch keeps its
    // last frame through a blip of the API server.
    showError(`Reading the rollout failed, retrying: ${e.message}`);
    return;
  }
  try {
    draw(body);
    showError("");
  } catch (e) {
    showError(`Drawing the rollout failed (a bug of this page): ${e.message}`);
  }
}

function showError(msg) {
  $("#error").hidden = !msg;
  $("#error").textContent = msg;
}

poll();
setInterval(poll, POLL_MS);

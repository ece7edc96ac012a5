package dashboard

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"

	"github.com/canary-router/canary-router/cmd/canary-router/report"
	"github.com/canary-router/canary-router/controller/migrate"
	"github.com/canary-router/canary-router/controller/rollout"
	"github.com/canary-router/canary-router/policy"
)

// dashboardDoc is the dashboard's /api/state: the rollout as `rollout
// status -o json` shows it, the plan it walks, the cluster as `status -o
// json` shows it, pods by workload, the status object's Events (the
// timeline) and the buttons the user may press.
type dashboardDoc struct {
	Time      time.Time `json:"time"`
	Namespace string    `json:"namespace"`
	report.RolloutDocument
	MigrationPaused      bool   `json:"migrationPaused"`
	MigrationPauseReason string `json:"migrationPauseReason,omitempty"`
	// Plan is the policy's rollout block; nil when the policy cannot be
	// read or has none.
	Plan *dashboardPlan `json:"plan,omitempty"`
	// Cluster is nil when the pods cannot be listed.
	Cluster   *report.StatusReport `json:"cluster,omitempty"`
	Workloads []dashboardWorkload  `json:"workloads"`
	Events    []dashboardEvent     `json:"events"`
	Actions   []dashboardAction    `json:"actions"`
	// Warnings say what could not be read.
	Warnings []string `json:"warnings,omitempty"`
}

// dashboardPlan is the rollout block of the policy, its durations
// written as Go does (5m0s).
type dashboardPlan struct {
	Canary    string          `json:"canary"`
	OnFailure string          `json:"onFailure"`
	Interval  string          `json:"interval"`
	Targets   []policy.Target `json:"targets"`
	Steps     []dashboardStep `json:"steps"`
	Gates     []dashboardGate `json:"gates"`
}

type dashboardStep struct {
	Weights []policy.Target `json:"weights"`
	Hold    string          `json:"hold"`
	Manual  bool            `json:"manual,omitempty"`
}

// dashboardGate is a gate's threshold as the plan sets it, by the name
// the leader's measurements carry (rollout.GateResult.Name).
type dashboardGate struct {
	Name      string `json:"name"`
	Threshold string `json:"threshold"`
}

// dashboardWorkload is one workload's live pods by the revision that
// injected them ("" for none: no sidecar).
type dashboardWorkload struct {
	Namespace string         `json:"namespace"`
	Kind      string         `json:"kind"`
	Name      string         `json:"name"`
	Pods      map[string]int `json:"pods"`
	// Managed: the namespace is the router's (opted in), so a pod without
	// a sidecar there is one the router should have sent to an injector.
	Managed  bool `json:"managed"`
	Unmeshed int  `json:"unmeshed"`
}

// dashboardEvent is one Event on the status object: a phase transition
// with its reason, as the leader records them.
type dashboardEvent struct {
	Time    time.Time `json:"time"`
	Type    string    `json:"type"`
	Reason  string    `json:"reason"`
	Message string    `json:"message"`
	Count   int32     `json:"count"`
}

// dashboardAction is one button: enabled, or disabled with the reason
// (the user's RBAC, or the phase the command has no meaning in).
type dashboardAction struct {
	Name    string `json:"name"`
	Enabled bool   `json:"enabled"`
	Reason  string `json:"reason,omitempty"`
}

// Timing of the backend's reads.
const (
	// clusterTTL: the pods are listed at most this often, however many
	// pages poll, since a list of every pod is the costly read.
	clusterTTL = 5 * time.Second
	// accessTTL: how long a SelfSubjectAccessReview's answer is kept.
	accessTTL = 30 * time.Second
	// maxEvents is how many of the latest Events the timeline shows.
	maxEvents = 50
)

// dashboardBackend reads the cluster with the user's clients and acts
// through the rollout commands' own code path (report.RequestRollout).
type dashboardBackend struct {
	client               kubernetes.Interface
	meta                 metadata.Interface
	namespace, configMap string
	now                  func() time.Time
	access               *Access

	mu        sync.Mutex
	snap      *report.ClusterSnapshot
	snapErr   error
	snapTaken time.Time
}

var _ Backend = (*dashboardBackend)(nil)

func newDashboardBackend(client kubernetes.Interface, meta metadata.Interface, namespace, configMap string) *dashboardBackend {
	return &dashboardBackend{client: client, meta: meta, namespace: namespace, configMap: configMap, now: time.Now,
		access: &Access{Client: client.AuthorizationV1().SelfSubjectAccessReviews(), TTL: accessTTL,
			// Every command is a merge patch of the status object.
			Attributes: authorizationv1.ResourceAttributes{Namespace: namespace, Verb: "patch", Resource: "configmaps", Name: migrate.StatusConfigMap}}}
}

func (b *dashboardBackend) status() *rollout.KubeStatus {
	return &rollout.KubeStatus{Client: b.client, Namespace: b.namespace}
}

// Act implements Backend.
func (b *dashboardBackend) Act(ctx context.Context, action, reason string) error {
	if reason == "" {
		reason = "paused from the dashboard"
	}
	return report.RequestRollout(ctx, b.status(), action, reason, b.now())
}

// State implements Backend. Only the status object must be
// readable: what else the user may not read becomes a warning.
func (b *dashboardBackend) State(ctx context.Context) (any, error) {
	data, err := b.status().Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the status object %s/%s: %w", b.namespace, migrate.StatusConfigMap, err)
	}
	st, ctl := rollout.Decode(data)
	_, mctl := migrate.DecodeStatus(data)
	doc := dashboardDoc{Time: b.now().UTC(), Namespace: b.namespace, RolloutDocument: report.RolloutDoc(data),
		MigrationPaused: mctl.Paused, MigrationPauseReason: mctl.PauseReason, Workloads: []dashboardWorkload{}}
	if snap, err := b.cluster(ctx); err != nil {
		doc.Warnings = append(doc.Warnings, report.ReadProblem("list pods", err))
	} else {
		rep := report.BuildStatus(snap)
		doc.Cluster = &rep
		doc.Plan = planOf(snap.PolicyDoc)
		doc.Workloads = workloadRows(snap.Workloads, rep.Namespaces.Managed)
	}
	doc.Events, err = b.events(ctx)
	if err != nil {
		doc.Warnings = append(doc.Warnings, report.ReadProblem("list the status object's Events", err))
	}
	doc.Actions = dashboardButtons(st, ctl, b.access.Check(ctx))
	return doc, nil
}

// cluster is report.ReadCluster, `canary-router status`'s read, at most once per
// clusterTTL.
func (b *dashboardBackend) cluster(ctx context.Context) (*report.ClusterSnapshot, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.snapTaken.IsZero() || b.now().Sub(b.snapTaken) >= clusterTTL {
		b.snap, b.snapErr = report.ReadCluster(ctx, b.client, b.meta, b.namespace, b.configMap)
		b.snapTaken = b.now()
	}
	return b.snap, b.snapErr
}

// events lists the status object's Events, the latest maxEvents, oldest
// first.
func (b *dashboardBackend) events(ctx context.Context) ([]dashboardEvent, error) {
	sel := fields.Set{"involvedObject.kind": "ConfigMap", "involvedObject.name": migrate.StatusConfigMap}.AsSelector().String()
	list, err := b.client.CoreV1().Events(b.namespace).List(ctx, metav1.ListOptions{FieldSelector: sel})
	if err != nil {
		return []dashboardEvent{}, err
	}
	out := make([]dashboardEvent, 0, len(list.Items))
	for i := range list.Items {
		out = append(out, eventRow(&list.Items[i]))
	}
	slices.SortStableFunc(out, func(a, b dashboardEvent) int { return a.Time.Compare(b.Time) })
	if len(out) > maxEvents {
		out = out[len(out)-maxEvents:]
	}
	return out, nil
}

// eventRow reads an Event's last time from whichever field its recorder
// set: events/v1 recorders set only eventTime and series.
func eventRow(e *corev1.Event) dashboardEvent {
	t := e.LastTimestamp.Time
	switch {
	case e.Series != nil && !e.Series.LastObservedTime.IsZero():
		t = e.Series.LastObservedTime.Time
	case t.IsZero() && !e.EventTime.IsZero():
		t = e.EventTime.Time
	case t.IsZero():
		t = e.CreationTimestamp.Time
	}
	return dashboardEvent{Time: t.UTC(), Type: e.Type, Reason: e.Reason, Message: e.Message, Count: max(e.Count, 1)}
}

// planOf is the policy's rollout block; nil when there is none or the
// policy is invalid (status's warnings say so).
func planOf(doc []byte) *dashboardPlan {
	if doc == nil {
		return nil
	}
	p, err := policy.Parse(doc)
	if err != nil || p.Rollout == nil {
		return nil
	}
	r := p.Rollout
	out := &dashboardPlan{Canary: r.Canary, OnFailure: string(r.OnFailure), Interval: r.Interval.String(),
		Targets: p.Targets, Gates: gateThresholds(r.Gates)}
	for _, s := range r.Steps {
		out.Steps = append(out.Steps, dashboardStep{Weights: s.Weights, Hold: s.Hold.String(), Manual: s.Manual})
	}
	return out
}

// gateThresholds says what each gate the leader measures must show, by
// the names of its measurements (controller/rollout's gates).
func gateThresholds(g policy.Gates) []dashboardGate {
	out := []dashboardGate{
		{rollout.GateInjector, "the canary's injector is live and answers"},
		{rollout.GateMismatches, fmt.Sprintf("at most %d routed-vs-injected mismatches", g.MaxMismatches)},
		{rollout.GatePodReady, fmt.Sprintf("ready ratio canary/stable at least %g, from %d canary pods", g.PodHealth.MinReadyRatio, g.PodHealth.MinPods)},
		{rollout.GateProxyRestarts, fmt.Sprintf("restart ratio canary/stable at most %g", g.PodHealth.MaxRestartRatio)},
	}
	if g.Prometheus == nil {
		return out
	}
	out = append(out, dashboardGate{policy.GateIstiodScraped, "Prometheus scrapes the canary's istiod"})
	for _, q := range g.Prometheus.Queries {
		var b []string
		if q.Min != nil {
			b = append(b, fmt.Sprintf("at least %g", *q.Min))
		}
		if q.Max != nil {
			b = append(b, fmt.Sprintf("at most %g", *q.Max))
		}
		out = append(out, dashboardGate{q.Name, strings.Join(b, " and ") + ": " + q.Query})
	}
	return out
}

// workloadRows lists workloads by namespace, kind and name.
func workloadRows(pods map[migrate.Ref]migrate.PodCounts, managed []string) []dashboardWorkload {
	out := make([]dashboardWorkload, 0, len(pods))
	for ref, c := range pods {
		out = append(out, dashboardWorkload{Namespace: ref.Namespace, Kind: ref.Kind, Name: ref.Name, Pods: c,
			Managed: slices.Contains(managed, ref.Namespace), Unmeshed: c[""]})
	}
	slices.SortFunc(out, func(a, b dashboardWorkload) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Name, b.Name))
	})
	return out
}

// dashboardButtons says which commands the page offers. RBAC first: a
// user who may not write the status object can press none. Then the
// phase: a command the leader would ignore (controller/rollout's
// machine: RolloutRequestIgnored) is disabled with the reason.
func dashboardButtons(st *rollout.State, ctl rollout.Control, perm Permission) []dashboardAction {
	var out []dashboardAction
	for _, a := range dashboardActions() {
		b := dashboardAction{Name: a, Enabled: perm.Allowed, Reason: perm.Reason}
		if perm.Allowed {
			if why := actionBlocked(a, st, ctl); why != "" {
				b.Enabled, b.Reason = false, why
			}
		}
		out = append(out, b)
	}
	return out
}

// actionBlocked says why an action has no meaning now, "" when it has.
func actionBlocked(action string, st *rollout.State, ctl rollout.Control) string {
	if st == nil {
		return "no rollout: the policy has no rollout block, or the leader has not started it yet"
	}
	ph := st.Phase
	switch action {
	case "pause":
		if ctl.Paused {
			return "already paused by an operator: " + ctl.PauseReason
		}
		if ph == rollout.PhaseComplete || ph == rollout.PhaseAborted {
			return "the rollout is " + string(ph)
		}
	case rollout.ActionResume:
		if ph != rollout.PhasePaused && !ctl.Paused {
			return "only a paused rollout resumes; it is " + string(ph)
		}
	case rollout.ActionPromote:
		if ph != rollout.PhaseHolding {
			return "only a holding step is promoted; the rollout is " + string(ph)
		}
	case rollout.ActionAbort:
		if ph == rollout.PhaseAborted {
			return "already aborted"
		}
	case rollout.ActionRetry:
		if ph != rollout.PhaseAborted && ph != rollout.PhasePaused && ph != rollout.PhaseRollingBack {
			return "only an aborted, paused or rolling-back rollout is retried; it is " + string(ph)
		}
	}
	return ""
}

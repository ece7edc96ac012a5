package policy

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// fuzzPolicy builds a valid policy from fuzz bytes: granularity and
// gateways from shape, one to four targets with integer weights summing to
// 100 (zeros included) from weights, and namespace "skip" excluded.
func fuzzPolicy(t *testing.T, shape uint8, weights uint32) *Policy {
	t.Helper()
	n := 1 + int(shape>>2)%4
	raw := make([]int, n)
	sum := 0
	for i := range raw {
		raw[i] = int(weights>>(8*i)) & 0xff
		if raw[i] < 0x40 {
			raw[i] = 0 // weights of 0 are common in real rollouts
		}
		sum += raw[i]
	}
	var b strings.Builder
	fmt.Fprintf(&b, "granularity: %s\nseed: fuzz\nnamespaces: {exclude: [skip]}\n", []string{"namespace", "workload", "pod"}[int(shape)%3])
	if shape&0x40 != 0 {
		b.WriteString("gateways: route\n")
	}
	b.WriteString("targets:\n")
	left := 100
	for i := range raw {
		w := 0
		switch {
		case sum == 0 && i == 0:
			w = 100
		case sum > 0 && i == n-1:
			w = left
		case sum > 0:
			w = raw[i] * 100 / sum
		}
		left -= w
		fmt.Fprintf(&b, "  - revision: rev-%d\n    weight: %d\n", i, w)
	}
	p, err := Parse([]byte(b.String()))
	if err != nil {
		t.Fatalf("generated policy does not parse: %v\n%s", err, b.String())
	}
	return p
}

// downMask marks target i down when bit i of bits is set; nil when none is.
func downMask(p *Policy, bits uint8) []bool {
	if bits&0xf == 0 {
		return nil
	}
	down := make([]bool, len(p.Targets))
	for i := range down {
		down[i] = bits&(1<<i) != 0
	}
	return down
}

// FuzzDecide: for any policy shape, set of unavailable targets and pod or
// namespace metadata, decisions are deterministic, name a known reason,
// never write a target that is down or not in the policy, fall back to a
// target of weight 0 only when every weighted target is down, and refuse
// only when every target is down.
func FuzzDecide(f *testing.F) {
	f.Add(uint8(1), uint32(0x80804040), uint8(0), "shop", "", "web-5d8f-", "ReplicaSet", "web-5d8f", "app", "web", "team", "a", "", "", uint64(7))
	f.Add(uint8(2), uint32(0xffff0000), uint8(1), "shop", "p", "", "", "", "istio-injection", "enabled", "", "", "", "", uint64(1<<63))
	f.Add(uint8(0), uint32(0x00ff00ff), uint8(0xf), "shop", "", "", "", "", "istio-injection", "enabled", "istio.io/rev", "rev-1", "canary-router.io/decision", `{"revision":"rev-1"}`, uint64(0))
	f.Add(uint8(0x45), uint32(0x01020304), uint8(2), "gw", "", "", "StatefulSet", "db", "canary-router.io/injection", "enabled", "sidecar.istio.io/inject", "true", "inject.istio.io/templates", "gateway", uint64(99))
	f.Add(uint8(0x0a), uint32(0x7f7f7f7f), uint8(5), "skip", "", "", "Job", "j", "istio.io/rev", "", "istio-injection", "enabled", "canary-router.io/decision", `{"revision":"rev-0"}`, uint64(3))
	f.Fuzz(func(t *testing.T, shape uint8, weights uint32, downBits uint8, ns, name, generateName, ownerKind, ownerName, lk, lv, lk2, lv2, ak, av string, draw uint64) {
		p := fuzzPolicy(t, shape, weights)
		down := downMask(p, downBits)
		labels, annotations := map[string]string{lk: lv, lk2: lv2}, map[string]string{ak: av}
		var owner *Owner
		if ownerKind != "" {
			owner = &Owner{Kind: ownerKind, Name: ownerName}
		}
		ps := PodSubject{Namespace: ns, Name: name, GenerateName: generateName, Labels: labels, Annotations: annotations, Owner: owner, Draw: draw, Down: down}
		d := p.DecidePod(ps)
		if again := p.DecidePod(ps); !reflect.DeepEqual(d, again) {
			t.Fatalf("DecidePod not deterministic: %+v then %+v", d, again)
		}
		checkRoute(t, p, down, d.Reason, d.Revision, d.Avoided, d.NoTarget)
		if d.Revision != "" && (p.Granularity == GranularityNamespace || systemNamespace(ns) || ns == "skip") {
			t.Fatalf("pod in namespace %q routed under %s granularity", ns, p.Granularity)
		}
		nsub := NamespaceSubject{Name: ns, Labels: labels, Annotations: annotations, Down: down}
		nd := p.DecideNamespace(nsub)
		if again := p.DecideNamespace(nsub); !reflect.DeepEqual(nd, again) {
			t.Fatalf("DecideNamespace not deterministic: %+v then %+v", nd, again)
		}
		if kept := nd.Reason == ReasonSticky && nd.Revision != "" && nd.Revision == labels[LabelIstioRev]; kept {
			// A namespace keeps the revision the router chose earlier even
			// when its weight has dropped to 0, but only while it is an
			// available target.
			if i := p.targetIndex(nd.Revision); i < 0 || isDown(down, i) {
				t.Fatalf("namespace kept on %q, not an available target (down %v)", nd.Revision, down)
			}
		} else {
			checkRoute(t, p, down, nd.Reason, nd.Revision, nd.Avoided, nd.NoTarget)
		}
		switch {
		case nd.Action != NamespaceNone && (systemNamespace(ns) || ns == "skip" || labels[LabelIstioInjection] == "disabled"):
			t.Fatalf("namespace %q with labels %v changed: %+v", ns, labels, nd)
		case nd.Action == NamespaceRoute && p.Granularity != GranularityNamespace:
			t.Fatalf("namespace routed under %s granularity", p.Granularity)
		case nd.Action == NamespaceOptIn && (p.Granularity == GranularityNamespace || labels[LabelIstioInjection] != "enabled"):
			t.Fatalf("namespace opted in under %s granularity with labels %v", p.Granularity, labels)
		case nd.Refuse && (!nd.NoTarget || nd.Action != NamespaceNone):
			t.Fatalf("refusal without NoTarget: %+v", nd)
		case nd.Action == NamespaceRoute && nd.Revision == "":
			t.Fatalf("routed namespace without a revision: %+v", nd)
		}
	})
}

// checkRoute holds one decision to the safety rules.
func checkRoute(t *testing.T, p *Policy, down []bool, reason Reason, rev, avoided string, noTarget bool) {
	t.Helper()
	switch reason {
	case ReasonPolicy, ReasonSticky, ReasonBalanced, ReasonPinned, ReasonOptedOut, ReasonExcluded, ReasonUnmanaged, ReasonFallback:
	default:
		t.Fatalf("unknown reason %q", reason)
	}
	allDown, weightedUp := true, false
	for i, tg := range p.Targets {
		if !isDown(down, i) {
			allDown = false
			weightedUp = weightedUp || tg.Weight > 0
		}
	}
	if noTarget && (!allDown || rev != "") {
		t.Fatalf("no target with %v down, revision %q", down, rev)
	}
	if rev == "" {
		return
	}
	if allDown {
		t.Fatalf("routed to %q with every target down", rev)
	}
	i := p.targetIndex(rev)
	switch {
	case i < 0:
		t.Fatalf("routed to %q, not a target", rev)
	case isDown(down, i):
		t.Fatalf("routed to %q, which is down", rev)
	case p.Targets[i].Weight == 0 && weightedUp:
		t.Fatalf("routed to %q of weight 0 while a weighted target is up", rev)
	case reason != ReasonFallback && avoided != "":
		t.Fatalf("avoided %q without falling back", avoided)
	case reason == ReasonFallback && avoided == "" && p.Targets[i].Weight > 0:
		t.Fatalf("fell back to %q without naming the target avoided", rev)
	}
}

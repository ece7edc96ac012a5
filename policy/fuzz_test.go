package policy

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse: any bytes give a policy or a ValidationError, never a panic;
// an accepted policy satisfies every documented rule.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/invalid/*.yaml")
	for _, s := range seeds {
		if data, err := os.ReadFile(s); err == nil && len(data) < 4096 {
			f.Add(data)
		}
	}
	f.Add([]byte("granularity: workload\nseed: s\ntargets: [{revision: a, weight: 33.3}, {revision: b, weight: 66.7}]\nnamespaces: {exclude: [x]}\ngateways: route\n"))
	f.Add([]byte(`{"granularity":"pod","targets":[{"revision":"a","weight":100}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data)
		if err != nil {
			verr, ok := err.(ValidationError)
			if !ok || len(verr) == 0 {
				t.Fatalf("error %T %v is not a non-empty ValidationError", err, err)
			}
			for _, fe := range verr {
				if fe.Field == "" || fe.Reason == "" {
					t.Fatalf("field error without a field or reason: %+v", fe)
				}
			}
			return
		}
		switch p.Granularity {
		case GranularityNamespace, GranularityWorkload, GranularityPod:
		default:
			t.Fatalf("accepted granularity %q", p.Granularity)
		}
		if p.Gateways != GatewaysExclude && p.Gateways != GatewaysRoute {
			t.Fatalf("accepted gateways %q", p.Gateways)
		}
		sum := 0.0
		seen := map[string]bool{}
		for _, tg := range p.Targets {
			if tg.Revision == "" || seen[tg.Revision] || tg.Weight < 0 || tg.Weight > 100 || math.IsNaN(tg.Weight) {
				t.Fatalf("accepted target %+v", tg)
			}
			seen[tg.Revision] = true
			sum += tg.Weight
		}
		if math.Abs(sum-100) > 1e-6 {
			t.Fatalf("accepted weights summing to %v", sum)
		}
	})
}

// FuzzDecidePod: for any pod metadata the decision names a policy target
// or leaves the pod alone, with a known reason, and never routes a pod
// that is pinned, opted out or in a system namespace.
func FuzzDecidePod(f *testing.F) {
	f.Add("shop", "", "web-5d8f-", "ReplicaSet", "web-5d8f", "pod-template-hash", "5d8f", "", "", uint64(7))
	f.Add("kube-system", "x", "", "", "", "istio.io/rev", "canary", "sidecar.istio.io/inject", "false", uint64(0))
	f.Add("shop", "db-0", "", "StatefulSet", "db", "", "", "inject.istio.io/templates", "gateway", uint64(1<<63))
	f.Add("jobs", "", "backup-29000000-", "Job", "backup-29000000", "sidecar.istio.io/inject", "false", "", "", uint64(3))
	policies := []*Policy{}
	for _, doc := range []string{
		"granularity: workload\nseed: f\ntargets: [{revision: stable, weight: 70}, {revision: canary, weight: 30}]\nnamespaces: {exclude: [skip]}\n",
		"granularity: pod\ntargets: [{revision: a, weight: 0}, {revision: b, weight: 50}, {revision: c, weight: 50}]\ngateways: route\n",
	} {
		p, err := Parse([]byte(doc))
		if err != nil {
			f.Fatal(err)
		}
		policies = append(policies, p)
	}
	reasons := map[Reason]bool{ReasonPolicy: true, ReasonSticky: true, ReasonBalanced: true, ReasonPinned: true,
		ReasonOptedOut: true, ReasonExcluded: true, ReasonUnmanaged: true, ReasonFallback: true}
	f.Fuzz(func(t *testing.T, ns, name, generateName, ownerKind, ownerName, lk, lv, ak, av string, draw uint64) {
		var owner *Owner
		if ownerKind != "" {
			owner = &Owner{Kind: ownerKind, Name: ownerName}
		}
		s := PodSubject{Namespace: ns, Name: name, GenerateName: generateName, Owner: owner, Draw: draw,
			Labels: map[string]string{lk: lv}, Annotations: map[string]string{ak: av}}
		for _, p := range policies {
			d := p.DecidePod(s)
			if !reasons[d.Reason] {
				t.Fatalf("unknown reason %q", d.Reason)
			}
			_, pinned := s.Labels[LabelIstioRev]
			optedOut := s.Labels[LabelSidecarInject] == "false" || s.Annotations[LabelSidecarInject] == "false"
			system := ns == "kube-system" || ns == "kube-public" || ns == "kube-node-lease"
			if d.Revision == "" {
				continue
			}
			if pinned || optedOut || system {
				t.Fatalf("routed a pinned/opted-out/system pod to %q: %+v", d.Revision, s)
			}
			if !p.hasTarget(d.Revision) {
				t.Fatalf("routed to %q, not a target with weight", d.Revision)
			}
			if strings.Contains(ns, "/") && d.Unit != "" && !strings.Contains(d.Unit, "/") && d.Unit != "Pod" {
				t.Fatalf("odd unit %q", d.Unit)
			}
		}
	})
}

func (p *Policy) hasTarget(rev string) bool {
	for _, t := range p.Targets {
		if t.Revision == rev && t.Weight > 0 {
			return true
		}
	}
	return false
}

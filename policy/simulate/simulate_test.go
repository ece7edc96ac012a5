package simulate

import (
	"testing"

	"github.com/canary-router/canary-router/policy"
)

func mustPolicy(t *testing.T, doc string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRunMatchesTheRoutersChoices(t *testing.T) {
	units, err := Generate(4, 40, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range []string{"namespace", "workload", "pod"} {
		t.Run(g, func(t *testing.T) {
			p := mustPolicy(t, "granularity: "+g+"\nseed: s\ntargets: [{revision: stable, weight: 80}, {revision: canary, weight: 20}]\n")
			res := Run(p, units)
			if res.Pods != 400 {
				t.Fatalf("%d pods, want 400", res.Pods)
			}
			for _, a := range res.Units {
				var want string
				switch g {
				case "namespace":
					want = p.Pick("namespace/" + a.Namespace)
				case "workload":
					want = p.Pick(a.Namespace + "/Deployment/" + a.Name)
				default:
					// 10 pods at 20 percent: exactly 2 canary in every workload.
					if a.Pods["canary"] != 2 || a.Pods["stable"] != 8 {
						t.Errorf("%s: pods %v, want 8 stable 2 canary", a.Name, a.Pods)
					}
					continue
				}
				if a.Revision != want || a.Pods[want] != a.Replicas {
					t.Errorf("%s/%s: %q %v, the router picks %q", a.Namespace, a.Name, a.Revision, a.Pods, want)
				}
			}
			if g == "pod" && (res.Totals[1].Pods != 80 || res.Totals[1].Share != 0.2) {
				t.Errorf("canary totals %+v", res.Totals[1])
			}
		})
	}
}

func TestCompareOnlyMovesTowardTheRaisedTarget(t *testing.T) {
	units, _ := Generate(10, 200, 3)
	for _, g := range []string{"namespace", "workload", "pod"} {
		a := Run(mustPolicy(t, "granularity: "+g+"\ntargets: [{revision: stable, weight: 90}, {revision: canary, weight: 10}]\n"), units)
		b := Run(mustPolicy(t, "granularity: "+g+"\ntargets: [{revision: stable, weight: 50}, {revision: canary, weight: 50}]\n"), units)
		moves := Compare(a, b)
		if len(moves) != 1 || moves[0].From != "stable" || moves[0].To != "canary" {
			t.Fatalf("%s: moves %+v, want only stable -> canary", g, moves)
		}
		if got, want := moves[0].Pods, b.Totals[1].Pods-a.Totals[1].Pods; got != want {
			t.Errorf("%s: %d pods moved, canary gained %d", g, got, want)
		}
	}
}

func TestParseUnits(t *testing.T) {
	good := "- namespace: shop\n  name: web\n  replicas: 3\n- namespace: shop\n  kind: StatefulSet\n  name: db\n  replicas: 1\n"
	units, err := ParseUnits([]byte(good))
	if err != nil || len(units) != 2 || units[0].Kind != "Deployment" || units[1].Kind != "StatefulSet" {
		t.Fatalf("units %+v, err %v", units, err)
	}
	for _, bad := range []string{"", "- namespace: shop\n", "- name: web\n", "- namespace: a\n  name: b\n  replica: 3\n", "- namespace: a\n  name: b\n  replicas: -1\n", "not a list"} {
		if _, err := ParseUnits([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestGenerate(t *testing.T) {
	if _, err := Generate(10, 5, 1); err == nil {
		t.Error("fewer deployments than namespaces accepted")
	}
	units, err := Generate(3, 0, 2)
	if err != nil || len(units) != 3 || units[2].Namespace != "ns-002" {
		t.Fatalf("%+v %v", units, err)
	}
}

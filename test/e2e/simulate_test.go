package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/canary-router/canary-router/test/fakeistio"
	"github.com/canary-router/canary-router/test/harness"
)

// TestSimulateAgreesWithRouter runs `canary-router simulate` on the same
// workloads and policy the router serves, and compares every workload's
// pods per revision with what the router really did on the cluster.
func TestSimulateAgreesWithRouter(t *testing.T) {
	for _, g := range []string{"workload", "pod"} {
		t.Run(g, func(t *testing.T) {
			doc := policyYAML(g, 70, 30)
			usePolicy(t, doc)
			ns := "sim-" + g
			managedNamespace(t, ns)
			env.WaitServiceAccount(t, ns)
			const n, replicas = 8, 10
			var list []map[string]any
			ctx := harness.Context(t, 3*time.Minute)
			for i := range n {
				name := fmt.Sprintf("svc-%d", i)
				if _, err := env.Cluster.Client.AppsV1().Deployments(ns).Create(ctx, harness.Deployment(ns, name, replicas), metaCreate); err != nil {
					t.Fatal(err)
				}
				list = append(list, map[string]any{"namespace": ns, "kind": "Deployment", "name": name, "replicas": replicas})
			}
			dir := t.TempDir()
			units, _ := json.Marshal(list)
			if err := os.WriteFile(filepath.Join(dir, "workloads.json"), units, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(doc), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(env.router.bin, "simulate", "--policy", filepath.Join(dir, "policy.yaml"),
				"--workloads", filepath.Join(dir, "workloads.json"), "-o", "json").Output()
			if err != nil {
				t.Fatalf("simulate: %v", err)
			}
			var sim struct {
				Result struct {
					Units []struct {
						Name string         `json:"name"`
						Pods map[string]int `json:"pods"`
					} `json:"units"`
				} `json:"result"`
			}
			if err := json.Unmarshal(out, &sim); err != nil {
				t.Fatalf("simulate output: %v\n%s", err, out)
			}
			agree, canarySim, canaryReal := 0, 0, 0
			for _, u := range sim.Result.Units {
				env.WaitAvailable(t, ctx, ns, u.Name, replicas)
				real := map[string]int{}
				for _, p := range env.ListPods(t, ns, "app="+u.Name) {
					real[fakeistio.InjectedRevision(&p)]++
				}
				canarySim += u.Pods["canary"]
				canaryReal += real["canary"]
				if real["canary"] == u.Pods["canary"] && real["stable"] == u.Pods["stable"] {
					agree++
				} else {
					t.Errorf("%s/%s: simulate says %v, the router did %v", ns, u.Name, u.Pods, real)
				}
			}
			t.Logf("RESULT simulate vs router, %s granularity, %d Deployments x %d replicas at 30%% canary: %d/%d workloads agree; canary pods simulated %d, real %d",
				g, n, replicas, agree, n, canarySim, canaryReal)
		})
	}
}

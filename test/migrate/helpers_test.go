package migrate

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/canary-router/canary-router/controller/migrate"
	"github.com/canary-router/canary-router/policy"
	"github.com/canary-router/canary-router/test/harness"
	"github.com/canary-router/canary-router/test/localrouter"
)

var optIn = map[string]string{policy.LabelOptIn: policy.OptInEnabled}

// managedNamespace creates an opted-in namespace, deleted when the test
// ends so the next scenario's policy does not judge its workloads.
func managedNamespace(t *testing.T, name string) {
	t.Helper()
	env.CreateNamespace(t, name, optIn)
	env.WaitServiceAccount(t, name)
	t.Cleanup(func() {
		_ = env.Cluster.Client.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
}

// writePolicy writes doc, waits until every running router replica has
// applied it, and returns its digest, the migration's policy generation.
// Without the wait, a namespace or pod created next may meet a replica
// still on the previous policy (on a loaded machine the watch event can
// take seconds), and be routed by it.
func writePolicy(t *testing.T, doc string) string {
	t.Helper()
	if err := env.WritePolicy(harness.Context(t, 30*time.Second), doc); err != nil {
		t.Fatal(err)
	}
	digest := harness.Digest(doc)
	waitApplied(t, digest)
	return digest
}

// waitApplied waits until the policy each running replica last logged as
// applied is the one of digest: the policy in force there.
func waitApplied(t *testing.T, digest string) {
	t.Helper()
	want := `"digest":"` + digest + `"`
	for _, r := range env.replicas {
		if r.proc == nil {
			continue
		}
		err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
			log, err := os.ReadFile(r.logPath)
			if err != nil {
				return false, nil
			}
			last := ""
			for _, line := range strings.Split(string(log), "\n") {
				if strings.Contains(line, `"msg":"policy applied"`) {
					last = line
				}
			}
			return strings.Contains(last, want), nil
		})
		if err != nil {
			t.Fatalf("%s never applied the policy %s:\n%s", r.name, digest, harness.TailFile(r.logPath, 2000))
		}
	}
}

// migrationStatus reads the status object.
func migrationStatus(ctx context.Context) (migrate.Status, migrate.Control, error) {
	cm, err := env.Cluster.Client.CoreV1().ConfigMaps(localrouter.Namespace).Get(ctx, migrate.StatusConfigMap, metav1.GetOptions{})
	if err != nil {
		return migrate.Status{}, migrate.Control{}, err
	}
	st, ctl := migrate.DecodeStatus(cm.Data)
	return st, ctl, nil
}

// waitPhase waits until the migration of digest reaches phase.
func waitPhase(t *testing.T, digest string, phase migrate.Phase, timeout time.Duration) migrate.Status {
	t.Helper()
	var st migrate.Status
	err := wait.PollUntilContextTimeout(context.Background(), 500*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		s, _, err := migrationStatus(ctx)
		st = s
		return err == nil && s.Digest == digest && s.Phase == phase, nil
	})
	if err != nil {
		dumpLogs(t)
		t.Fatalf("migration of %s not %s after %s: %+v", digest, phase, timeout, st)
	}
	return st
}

// rollWatch samples, every 200 ms, how many workloads in namespaces are
// rolling (not complete): the migration must never have more than its
// batch size rolling at once.
type rollWatch struct {
	stop    chan struct{}
	done    chan struct{}
	mu      sync.Mutex
	maxSeen int
}

func watchRolling(namespaces ...string) *rollWatch {
	w := &rollWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			n := 0
			for _, ns := range namespaces {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				ds, err := env.Cluster.Client.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
				cancel()
				if err != nil {
					continue
				}
				for i := range ds.Items {
					if !migrate.Complete(migrate.FromDeployment(&ds.Items[i])) {
						n++
					}
				}
			}
			w.mu.Lock()
			w.maxSeen = max(w.maxSeen, n)
			w.mu.Unlock()
			select {
			case <-w.stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	return w
}

func (w *rollWatch) Max() int {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.maxSeen
}

// restarts counts each Deployment's restarts by its ReplicaSets: one per
// pod template, so a Deployment never restarted has one.
func restarts(t *testing.T, ns string) map[string]int {
	t.Helper()
	rss, err := env.Cluster.Client.AppsV1().ReplicaSets(ns).List(harness.Context(t, 30*time.Second), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, rs := range rss.Items {
		if ref := metav1.GetControllerOf(&rs); ref != nil && ref.Kind == "Deployment" {
			out[ref.Name]++
		}
	}
	for k := range out {
		out[k]--
	}
	return out
}

// cliPlan runs `canary-router migrate -o json` as the cluster admin: the
// drift left, as an operator would see it.
func cliPlan(t *testing.T) migrate.Plan {
	t.Helper()
	out, err := exec.Command(env.Bin, "migrate", "-o", "json", "--kubeconfig", env.Cluster.Kubeconfig).Output()
	if err != nil {
		t.Fatalf("canary-router migrate: %v\n%s", err, out)
	}
	var p migrate.Plan
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatalf("plan JSON: %v\n%s", err, out)
	}
	return p
}

// cli runs canary-router with args as the cluster admin.
func cli(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(env.Bin, append(args, "--kubeconfig", env.Cluster.Kubeconfig)...).CombinedOutput()
	if err != nil {
		t.Fatalf("canary-router %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// createDeployments creates n Deployments of replicas in ns and waits
// until every one is available.
func createDeployments(t *testing.T, ns string, n int, replicas int32) []string {
	t.Helper()
	var names []string
	for i := range n {
		name := fmt.Sprintf("app-%02d", i)
		env.CreateDeployment(t, harness.Deployment(ns, name, replicas))
		names = append(names, name)
	}
	for _, name := range names {
		env.WaitAvailable(t, harness.Context(t, 3*time.Minute), ns, name, replicas)
	}
	return names
}

func parsePolicy(t *testing.T, doc string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// dumpLogs prints the migration's and the leader election's lines from
// both replicas' logs.
func dumpLogs(t *testing.T) {
	for _, ns := range []string{"leader", "wl-a", "kinds"} {
		t.Logf("state: %s", env.ClusterState(ns))
	}
	for _, c := range []string{"kube-controller-manager", "kwok"} {
		b, _ := os.ReadFile(filepath.Join(env.Cluster.Dir, "logs", c+".log"))
		var lines []string
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, "NotReady") || strings.Contains(l, "not ready") || strings.Contains(l, "MarkPodsNotReady") ||
				strings.Contains(l, "Unknown") || strings.Contains(l, "rror") {
				lines = append(lines, l)
			}
		}
		if len(lines) > 15 {
			lines = lines[len(lines)-15:]
		}
		t.Logf("%s:\n%s", c, strings.Join(lines, "\n"))
	}
	for _, r := range env.replicas {
		b, _ := os.ReadFile(r.logPath)
		var lines []string
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, `"logger":"migration`) || strings.Contains(l, `"logger":"leader`) || strings.Contains(l, "policy applied") {
				lines = append(lines, l)
			}
		}
		if len(lines) > 40 {
			lines = lines[len(lines)-40:]
		}
		t.Logf("%s (%s):\n%s", r.name, r.logPath, strings.Join(lines, "\n"))
	}
}

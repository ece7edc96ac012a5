package dashboard

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/canary-router/canary-router/controller/migrate"
	"github.com/canary-router/canary-router/controller/rollout"
	"github.com/canary-router/canary-router/policy"
	"github.com/canary-router/canary-router/test/harness"
	"github.com/canary-router/canary-router/test/localrouter"
)

// screenshotEnv, when set, is where the test also writes its screenshot
// of a holding rollout: docs/images/dashboard.png is made this way.
const screenshotEnv = "CANARY_ROUTER_DASHBOARD_SCREENSHOT"

// pageView is what the page shows, read from its DOM.
type pageView struct {
	Loaded  bool   `json:"loaded"`
	Phase   string `json:"phase"`
	Step    string `json:"step"`
	Weights string `json:"weights"`
	// Injected is the pods per revision column of the revisions table.
	Injected map[string]int `json:"injected"`
	// Buttons are the action buttons by name.
	Buttons map[string]button `json:"buttons"`
	// Why lists the disabled buttons' reasons.
	Why string `json:"why"`
}

type button struct {
	Disabled bool   `json:"disabled"`
	Title    string `json:"title"`
}

const readPage = `(() => {
  const text = (s) => (document.querySelector(s) || {}).textContent || "";
  const injected = {}, buttons = {};
  for (const r of document.querySelectorAll("#revisions tbody tr")) {
    injected[r.dataset.revision] = Number(r.querySelector("[data-field=injected]").textContent);
  }
  for (const b of document.querySelectorAll("#actions button")) {
    buttons[b.dataset.action] = {disabled: b.disabled, title: b.title};
  }
  return {loaded: document.body.dataset.loaded === "true", phase: text("#phase"), step: text("#step"),
    weights: text("#weights"), injected, buttons, why: text("#why")};
})()`

// During a rollout holding at its first step, the page shows the status
// object's step and weights and the pods' revisions; Pause pauses it.
func TestDashboardInBrowser(t *testing.T) {
	ns := "shop"
	env.CreateNamespace(t, ns, map[string]string{policy.LabelOptIn: policy.OptInEnabled})
	env.WaitServiceAccount(t, ns)
	for i := range 6 {
		env.CreateDeployment(t, harness.Deployment(ns, fmt.Sprintf("app-%02d", i), 2))
	}
	for i := range 6 {
		env.WaitAvailable(t, harness.Context(t, 3*time.Minute), ns, fmt.Sprintf("app-%02d", i), 2)
	}
	writePolicy(t, harness.PolicyYAML("workload", "dashboard", 100, 0)+
		"migration: {batchSize: 6, interval: 0s, readinessTimeout: 2m}\n"+
		"rollout:\n  interval: 2s\n  steps:\n    - {canary: 50, hold: manual}\n    - {canary: 100}\n")
	st := waitStatus(t, 3*time.Minute, func(s *rollout.State) bool { return s.Step == 0 && s.Phase == rollout.PhaseHolding })

	ctx := browser(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(startDashboard(t, env.Cluster.Kubeconfig))); err != nil {
		t.Fatal(err)
	}
	v := waitPage(t, ctx, "the holding rollout", func(v pageView) bool { return v.Loaded && v.Phase == string(rollout.PhaseHolding) })
	if want := strconv.Itoa(st.Step + 1); v.Step != want {
		t.Errorf("page shows step %q, the status object %s", v.Step, want)
	}
	if want := rollout.FormatWeights(st.Weights); v.Weights != want {
		t.Errorf("page shows weights %q, the status object %q", v.Weights, want)
	}
	// Pods: the page lists them at most every 5 s; the harness counts
	// them itself, from the pods' Istio annotations.
	var perRev map[string]int
	v = waitPage(t, ctx, "the pods the cluster holds", func(v pageView) bool {
		perRev, _, _ = env.PodsByRevision(t, false, ns)
		delete(perRev, "")
		return len(perRev) == 2 && maps.Equal(v.Injected, withZeros(perRev, v.Injected))
	})
	t.Logf("RESULT dashboard-shows: step=%s weights=%q pods=%v (status object: step %d, weights %q)",
		v.Step, v.Weights, v.Injected, st.Step+1, rollout.FormatWeights(st.Weights))
	for _, name := range []string{"pause", "promote", "abort"} {
		if b := v.Buttons[name]; b.Disabled {
			t.Errorf("%s is disabled for the cluster admin while Holding: %q", name, b.Title)
		}
	}
	shot := screenshot(t, ctx, "dashboard-holding.png")
	if path := os.Getenv(screenshotEnv); path != "" {
		if err := os.WriteFile(path, shot, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	if err := chromedp.Do(ctx, chromedp.SendKeys("#pause-reason", "paused from the browser test"), chromedp.Click("#action-pause")); err != nil {
		t.Fatal(err)
	}
	v = waitPage(t, ctx, "the paused rollout", func(v pageView) bool { return v.Phase == string(rollout.PhasePaused) })
	paused := waitStatus(t, 30*time.Second, func(s *rollout.State) bool { return s.Phase == rollout.PhasePaused })
	if !strings.Contains(paused.Reason, "paused from the browser test") || v.Buttons["resume"].Disabled {
		t.Errorf("status object reason %q; resume %+v", paused.Reason, v.Buttons["resume"])
	}
	screenshot(t, ctx, "dashboard-paused.png")
	t.Logf("RESULT dashboard-pause: page phase %s, status object phase %s, reason %q", v.Phase, paused.Phase, paused.Reason)
}

// A user who may read the status object but not patch it sees every
// button disabled, and why.
func TestDashboardWithoutRights(t *testing.T) {
	ctx := harness.Context(t, time.Minute)
	c := env.Cluster.Client
	_, err := c.RbacV1().Roles(localrouter.Namespace).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "rollout-viewer"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{migrate.StatusConfigMap}, Verbs: []string{"get"}}}},
		metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig, _, err := env.ServiceAccountKubeconfig(ctx, localrouter.Namespace, "rollout-viewer")
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.RbacV1().RoleBindings(localrouter.Namespace).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "rollout-viewer"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "rollout-viewer"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "rollout-viewer", Namespace: localrouter.Namespace}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bctx := browser(t)
	if err := chromedp.Do(bctx, chromedp.Navigate(startDashboard(t, kubeconfig))); err != nil {
		t.Fatal(err)
	}
	v := waitPage(t, bctx, "the buttons", func(v pageView) bool { return v.Loaded && len(v.Buttons) == 5 })
	for name, b := range v.Buttons {
		if !b.Disabled || !strings.Contains(b.Title, "may not patch configmaps/"+migrate.StatusConfigMap) {
			t.Errorf("%s: %+v; want disabled for want of RBAC", name, b)
		}
	}
	if !strings.Contains(v.Why, "pause, resume, promote, abort, retry: your user may not patch") {
		t.Errorf("the page says %q, want why the buttons are disabled", v.Why)
	}
	screenshot(t, bctx, "dashboard-no-rights.png")
	t.Logf("RESULT dashboard-no-rights: pause disabled=%v title=%q", v.Buttons["pause"].Disabled, v.Buttons["pause"].Title)
}

// withZeros is want with a 0 for each revision the page lists that the
// pods do not carry, so an empty row compares equal.
func withZeros(want, page map[string]int) map[string]int {
	out := maps.Clone(want)
	for rev := range page {
		if _, ok := out[rev]; !ok {
			out[rev] = 0
		}
	}
	return out
}

// startDashboard runs `canary-router dashboard` with kubeconfig on a free
// port and returns the page's URL; the test's end stops it.
func startDashboard(t *testing.T, kubeconfig string) string {
	t.Helper()
	cmd := exec.Command(env.Bin, "dashboard", "--port", "0", "--no-browser", "--kubeconfig", kubeconfig,
		"--namespace", localrouter.Namespace, "--policy-configmap", harness.PolicyConfigMap)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(t.TempDir(), "dashboard.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		_ = logFile.Close()
		if t.Failed() {
			t.Logf("dashboard stderr:\n%s", harness.TailFile(logPath, 4000))
		}
	})
	urls := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		urls <- regexp.MustCompile(`http://\S+/`).FindString(line)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case url := <-urls:
		if url == "" {
			t.Fatal("canary-router dashboard printed no URL")
		}
		return url
	case <-time.After(30 * time.Second):
		t.Fatal("canary-router dashboard did not start within 30s")
	}
	return ""
}

// browser starts headless Chromium for the test. Root (CI) needs
// --no-sandbox.
func browser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath("chromium"), chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.WindowSize(1400, 1000), chromedp.UserDataDir(t.TempDir()))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	return ctx
}

// waitPage reads the page until ok holds, for up to a minute.
func waitPage(t *testing.T, ctx context.Context, what string, ok func(pageView) bool) pageView {
	t.Helper()
	var v pageView
	var lastErr error
	err := wait.PollUntilContextTimeout(context.Background(), 500*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		v, lastErr = chromedp.Run(ctx, chromedp.Evaluate[pageView](readPage))
		return lastErr == nil && ok(v), nil
	})
	if err != nil {
		screenshot(t, ctx, "dashboard-failed.png")
		t.Fatalf("the page did not show %s within a minute: %+v (last error %v)", what, v, lastErr)
	}
	return v
}

// screenshot saves the whole page as a test artifact (kept with go test
// -artifacts) and returns it.
func screenshot(t *testing.T, ctx context.Context, name string) []byte {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return nil
	}
	path := filepath.Join(t.ArtifactDir(), name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s (%d bytes)", path, len(png))
	return png
}

func writePolicy(t *testing.T, doc string) {
	t.Helper()
	if err := env.WritePolicy(harness.Context(t, 30*time.Second), doc); err != nil {
		t.Fatal(err)
	}
}

// waitStatus polls the status object until done holds.
func waitStatus(t *testing.T, timeout time.Duration, done func(*rollout.State) bool) *rollout.State {
	t.Helper()
	var st *rollout.State
	err := wait.PollUntilContextTimeout(context.Background(), 250*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		cm, err := env.Cluster.Client.CoreV1().ConfigMaps(localrouter.Namespace).Get(ctx, migrate.StatusConfigMap, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		st, _ = rollout.Decode(cm.Data)
		return st != nil && done(st), nil
	})
	if err != nil {
		t.Fatalf("rollout not there after %s: %+v", timeout, st)
	}
	return st
}

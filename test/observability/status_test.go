package observability

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canary-router/canary-router/test/harness"
)

// statusOutput is the part of `canary-router status -o json` the tests
// compare with Prometheus.
type statusOutput struct {
	Policy struct {
		Valid bool   `json:"valid"`
		Error string `json:"error"`
	} `json:"policy"`
	Revisions []struct {
		Revision       string  `json:"revision"`
		TagOf          string  `json:"tagOf"`
		InPolicy       bool    `json:"inPolicy"`
		TargetShare    float64 `json:"targetShare"`
		RoutedPods     int     `json:"routedPods"`
		InjectedPods   int     `json:"injectedPods"`
		MismatchedPods int     `json:"mismatchedPods"`
		ObservedShare  float64 `json:"observedShare"`
	} `json:"revisions"`
	RoutedPods     int `json:"routedPods"`
	MismatchedPods int `json:"mismatchedPods"`
	OverriddenPins int `json:"overriddenPins"`
	Mismatches     []struct {
		Routed   string `json:"routedRevision"`
		Injected string `json:"injectedRevision"`
		Pods     int    `json:"pods"`
	} `json:"mismatches"`
	PinOverrides []struct {
		Routed   string `json:"routedRevision"`
		Injected string `json:"injectedRevision"`
		Pods     int    `json:"pods"`
	} `json:"pinOverrides"`
	Namespaces struct {
		ByRevision map[string][]string `json:"byRevision"`
		Managed    []string            `json:"managed"`
	} `json:"namespaces"`
	Warnings []string `json:"warnings"`
}

// viewerUser is the identity status runs as: read access only, through
// the ClusterRole and Role in deploy/monitoring/rbac-status.yaml.
const viewerUser = "rollout-viewer"

// viewerKubeconfig applies the status RBAC from deploy/monitoring, binds
// it to a user with a client certificate, and returns that user's
// kubeconfig.
func viewerKubeconfig(t *testing.T) string {
	t.Helper()
	ctx := harness.Context(t, time.Minute)
	if out, err := env.Cluster.Kubectl(ctx, "apply", "-f", filepath.Join("..", "..", "deploy", "monitoring", "rbac-status.yaml")); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	subject := []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: viewerUser}}
	rbac := env.Cluster.Client.RbacV1()
	if _, err := rbac.ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "canary-router-status-" + viewerUser},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "canary-router-status"},
		Subjects:   subject,
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := rbac.RoleBindings(routerNamespace).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "canary-router-status-" + viewerUser, Namespace: routerNamespace},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "canary-router-status"},
		Subjects:   subject,
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := env.Cluster.CA.IssueClient(viewerUser, nil)
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.StdEncoding.EncodeToString
	kubeconfig := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: e2e, cluster: {server: %q, certificate-authority-data: %s}}]
users: [{name: %s, user: {client-certificate-data: %s, client-key-data: %s}}]
contexts: [{name: viewer, context: {cluster: e2e, user: %s}}]
current-context: viewer
`, env.Cluster.Config.Host, b64(env.Cluster.CA.CertPEM), viewerUser, b64(certPEM), b64(keyPEM), viewerUser)
	path := filepath.Join(t.TempDir(), "viewer.kubeconfig")
	if err := os.WriteFile(path, []byte(kubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	// The viewer may do nothing else: status must not depend on more.
	if out, err := env.Cluster.Kubectl(ctx, "auth", "can-i", "list", "secrets", "--as", viewerUser, "-n", routerNamespace); err == nil {
		t.Fatalf("the viewer can list Secrets: %s", out)
	}
	return path
}

// runStatus runs the status command of the binary under test.
func runStatus(t *testing.T, kubeconfig string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, env.Bin, append([]string{"status", "--kubeconfig", kubeconfig}, args...)...)
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("canary-router status %v: %v\n%s%s", args, err, out, stderr)
	}
	return out
}

// statusMatchesPrometheus runs `status -o json` and checks its figures
// against the same figures from Prometheus, retrying while either lags
// the other (a scrape a second, informers in the router). It returns the
// last JSON document.
func statusMatchesPrometheus(t *testing.T, kubeconfig string) statusOutput {
	t.Helper()
	var st statusOutput
	var diffs []string
	for range 20 {
		if err := json.Unmarshal(runStatus(t, kubeconfig, "-o", "json"), &st); err != nil {
			t.Fatal(err)
		}
		diffs = compareStatus(t, st)
		if len(diffs) == 0 {
			return st
		}
		time.Sleep(time.Second)
	}
	t.Fatalf("status -o json disagrees with Prometheus:\n%v", diffs)
	return st
}

// compareStatus lists the differences between status and Prometheus.
func compareStatus(t *testing.T, st statusOutput) []string {
	t.Helper()
	q := func(expr string) []sample {
		v, err := env.prom.query(context.Background(), expr)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	routed := byLabel(q(`sum by (routed_revision) (canary_router_pods{routed_revision!=""})`), "routed_revision")
	injected := byLabel(q(`sum by (injected_revision) (canary_router_pods{injected_revision!=""})`), "injected_revision")
	observed := byLabel(q(`canary_router:routed_share:ratio`), "revision")
	target := byLabel(q(`canary_router:target_share:max`), "revision")
	mismatched := q(`canary_router_pods_mismatched`)
	overridden := q(`canary_router_pods_pin_overridden`)
	var diffs []string
	diff := func(what string, status, prom float64) {
		if !near(status, prom) {
			diffs = append(diffs, fmt.Sprintf("%s: status %g, Prometheus %g", what, status, prom))
		}
	}
	if !st.Policy.Valid {
		diffs = append(diffs, "status: policy not valid: "+st.Policy.Error)
	}
	if len(mismatched) != 1 {
		diffs = append(diffs, fmt.Sprintf("canary_router_pods_mismatched: %v", mismatched))
	} else {
		diff("mismatched pods", float64(st.MismatchedPods), mismatched[0].Value)
	}
	if len(overridden) != 1 {
		diffs = append(diffs, fmt.Sprintf("canary_router_pods_pin_overridden: %v", overridden))
	} else {
		diff("overridden pins", float64(st.OverriddenPins), overridden[0].Value)
	}
	seen := map[string]bool{}
	for _, r := range st.Revisions {
		seen[r.Revision] = true
		diff(r.Revision+" routed pods", float64(r.RoutedPods), routed[r.Revision])
		if r.TagOf == "" {
			diff(r.Revision+" injected pods", float64(r.InjectedPods), injected[r.Revision])
		}
		if st.RoutedPods > 0 {
			diff(r.Revision+" observed share", r.ObservedShare, observed[r.Revision])
		}
		if r.InPolicy {
			diff(r.Revision+" target share", r.TargetShare, target[r.Revision])
		}
	}
	for _, m := range []map[string]float64{routed, injected} {
		for rev, n := range m {
			if n > 0 && !seen[rev] {
				diffs = append(diffs, fmt.Sprintf("Prometheus has %g pods on %s, status has no line for it", n, rev))
			}
		}
	}
	return diffs
}

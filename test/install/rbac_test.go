package install

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// permission is one row of `kubectl auth can-i --list`.
type permission struct {
	Resource, NonResourceURLs, ResourceNames, Verbs string
}

func (p permission) String() string {
	return fmt.Sprintf("%s %s %s %s", p.Resource, p.NonResourceURLs, p.ResourceNames, p.Verbs)
}

// scopes are where the router's permissions are listed: cluster-wide
// (with the "default" namespace, where it has no Role), its own namespace
// and Istio's.
var scopes = []string{"default", routerNamespace, "istio-system"}

// Permissions every install grants the router, by scope. A cluster-wide
// rule also shows in every namespace.
var (
	clusterRead = []permission{
		{"pods", "[]", "[]", "[list watch]"},
		{"mutatingwebhookconfigurations.admissionregistration.k8s.io", "[]", "[]", "[list watch]"},
		{"namespaces", "[]", "[]", "[list watch patch]"},
		{"deployments.apps", "[]", "[]", "[list watch patch]"},
		{"statefulsets.apps", "[]", "[]", "[list watch patch]"},
		{"daemonsets.apps", "[]", "[]", "[list watch patch]"},
		{"rollouts.argoproj.io", "[]", "[]", "[list watch patch]"},
		{"events", "[]", "[]", "[create patch]"},
	}
	ownNamespace = []permission{
		{"configmaps", "[]", "[canary-router-policy]", "[list watch]"},
		{"configmaps", "[]", "[canary-router-status]", "[get patch list watch]"},
		{"configmaps", "[]", "[]", "[create]"},
		{"leases.coordination.k8s.io", "[]", "[]", "[get create update]"},
	}
	istioNamespace = []permission{
		{"endpointslices.discovery.k8s.io", "[]", "[]", "[list watch]"},
	}
	// What --cert-mode=self-managed adds.
	webhookCA = []permission{
		{"mutatingwebhookconfigurations.admissionregistration.k8s.io", "[]", "[canary-router]", "[get patch]"},
		{"validatingwebhookconfigurations.admissionregistration.k8s.io", "[]", "[canary-router]", "[get list watch patch]"},
	}
	caSecret = []permission{
		{"secrets", "[]", "[canary-router-ca]", "[get list watch update]"},
		{"secrets", "[]", "[]", "[create]"},
	}
)

// expectedPermissions is the router's exact permission list per scope for
// a certificate mode, beyond what every authenticated identity has.
func expectedPermissions(certMode string) map[string][]permission {
	cluster := slices.Clone(clusterRead)
	own := slices.Concat(clusterRead, ownNamespace)
	if certMode == certSelfManaged {
		cluster = append(cluster, webhookCA...)
		own = slices.Concat(own, webhookCA, caSecret)
	}
	return map[string][]permission{
		"default":       cluster,
		routerNamespace: own,
		"istio-system":  slices.Concat(cluster, istioNamespace),
	}
}

// canIList runs `kubectl auth can-i --list --as=user -n namespace` and
// returns the table as printed and its rows.
func canIList(t *testing.T, ctx context.Context, user, namespace string) (string, []permission) {
	t.Helper()
	out, err := env.Cluster.Kubectl(ctx, "auth", "can-i", "--list", "--as="+user, "-n", namespace)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	table := string(out)
	lines := strings.Split(strings.TrimRight(table, "\n"), "\n")
	header := lines[0]
	cols := []int{0, strings.Index(header, "Non-Resource URLs"), strings.Index(header, "Resource Names"), strings.Index(header, "Verbs")}
	if slices.Contains(cols[1:], -1) {
		t.Fatalf("unexpected kubectl auth can-i header %q", header)
	}
	var rows []permission
	for _, l := range lines[1:] {
		field := func(i int) string {
			end := len(l)
			if i+1 < len(cols) {
				end = min(cols[i+1], len(l))
			}
			if cols[i] >= len(l) {
				return ""
			}
			return strings.TrimSpace(l[cols[i]:end])
		}
		rows = append(rows, permission{field(0), field(1), field(2), field(3)})
	}
	return table, rows
}

// ownPermissions is rows minus baseline, as multisets: what the router
// has that a ServiceAccount without any binding does not.
func ownPermissions(rows, baseline []permission) []permission {
	left := map[permission]int{}
	for _, b := range baseline {
		left[b]++
	}
	var own []permission
	for _, r := range rows {
		if left[r] > 0 {
			left[r]--
			continue
		}
		own = append(own, r)
	}
	return own
}

// checkPermissions prints the router's permission table per scope and
// fails when it holds any permission not in the expected list, or lacks
// one. The baseline is the namespace's default ServiceAccount (no
// bindings): discovery, self-reviews and the like, which every
// authenticated identity has.
func checkPermissions(t *testing.T, ctx context.Context, certMode string) {
	t.Helper()
	want := expectedPermissions(certMode)
	for _, ns := range scopes {
		table, rows := canIList(t, ctx, routerUser, ns)
		_, baseline := canIList(t, ctx, "system:serviceaccount:"+routerNamespace+":default", ns)
		t.Logf("kubectl auth can-i --list --as=%s -n %s\n%s", routerUser, ns, table)
		got := ownPermissions(rows, baseline)
		for _, p := range got {
			if !slices.Contains(want[ns], p) {
				t.Errorf("namespace %s: unneeded permission %v", ns, p)
			}
		}
		for _, p := range want[ns] {
			if !slices.Contains(got, p) {
				t.Errorf("namespace %s: missing permission %v", ns, p)
			}
		}
	}
}

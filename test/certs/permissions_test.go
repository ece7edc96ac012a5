package certse2e

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/canary-router/canary-router/certs"
	"github.com/canary-router/canary-router/test/harness"
)

// TestLeastPrivilege runs the router as a ServiceAccount granted exactly
// certs.RequiredPermissions (the list docs/certificates.md and the RBAC
// manifests copy), plus what the router's other parts read (otherReads):
// it must become ready and keep caBundle current. With one certificate
// permission taken away, it must stop at start and name it.
func TestLeastPrivilege(t *testing.T) {
	perms := certs.RequiredPermissions(routerNamespace, secretName, configName)

	t.Run("exact permissions suffice", func(t *testing.T) {
		deleteCASecret(t)
		kubeconfig := serviceAccountKubeconfig(t, "least-privilege")
		grant(t, "least-privilege", append(otherReads(t), perms...))
		r := newRouter(t, "least")
		installWebhooks(t, r)
		r.start(t, r.selfManagedArgs(kubeconfig)...)
		r.waitReady(t, 30*time.Second)
		waitBundlesTrust(t, currentCA(t), 10*time.Second)
		checkRouted(t, createPod(t, "least-privilege"))
		// The informers list and watch by name; a denied list would only
		// be logged by client-go's reflector, so look for it.
		time.Sleep(2 * time.Second)
		if log := r.logTail(1 << 20); strings.Contains(strings.ToLower(log), "forbidden") {
			t.Errorf("a call was forbidden with exactly the required permissions:\n%s", log)
		}
	})

	for _, missing := range []certs.Permission{
		{Verb: "update", Resource: "secrets", Namespace: routerNamespace, Name: secretName},
		{Verb: "patch", Group: "admissionregistration.k8s.io", Resource: "validatingwebhookconfigurations", Name: configName},
	} {
		t.Run("without "+missing.Verb+" "+missing.Resource, func(t *testing.T) {
			sa := "without-" + missing.Verb
			kubeconfig := serviceAccountKubeconfig(t, sa)
			var some []certs.Permission
			for _, p := range perms {
				if p != missing {
					some = append(some, p)
				}
			}
			grant(t, sa, some)
			r := newRouter(t, sa)
			r.start(t, r.selfManagedArgs(kubeconfig)...)
			out := waitExit(t, r, 20*time.Second)
			if want := "cannot " + missing.String(); !strings.Contains(out, want) {
				t.Errorf("output does not say %q:\n%s", want, out)
			}
			if n := strings.Count(out, "cannot "); n != 1 {
				t.Errorf("output names %d missing permissions, want 1:\n%s", n, out)
			}
		})
	}

	t.Run("no permissions at all", func(t *testing.T) {
		kubeconfig := serviceAccountKubeconfig(t, "nobody")
		r := newRouter(t, "nobody")
		r.start(t, r.selfManagedArgs(kubeconfig)...)
		out := waitExit(t, r, 20*time.Second)
		for _, p := range perms {
			if want := "cannot " + p.String(); !strings.Contains(out, want) {
				t.Errorf("output does not say %q", want)
			}
		}
		t.Logf("the router said:\n%s", out)
	})
}

// otherReads are the permissions of the router's parts other than
// certificates (Istio view, pod and namespace views, the leader's
// controllers), read from the manifests' own Roles (deploy/base/rbac.yaml),
// so the test follows what the router is granted: not under test here,
// granted so the router can become ready and its controllers run without a
// forbidden call. Note the cluster-wide list/watch of
// MutatingWebhookConfigurations makes the by-name list/watch in
// RequiredPermissions redundant for the MWC; the VWC's is still exercised.
func otherReads(t *testing.T) []certs.Permission {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "deploy", "base", "rbac.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []certs.Permission
	dec := utilyaml.NewYAMLOrJSONDecoder(f, 4096)
	for {
		var role struct {
			Kind     string              `json:"kind"`
			Metadata metav1.ObjectMeta   `json:"metadata"`
			Rules    []rbacv1.PolicyRule `json:"rules"`
		}
		if err := dec.Decode(&role); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if role.Kind != "ClusterRole" && role.Kind != "Role" {
			continue
		}
		for _, r := range role.Rules {
			names := r.ResourceNames
			if len(names) == 0 {
				names = []string{""}
			}
			for _, g := range r.APIGroups {
				for _, res := range r.Resources {
					for _, v := range r.Verbs {
						for _, n := range names {
							out = append(out, certs.Permission{Verb: v, Group: g, Resource: res, Namespace: role.Metadata.Namespace, Name: n})
						}
					}
				}
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("no rules read from deploy/base/rbac.yaml")
	}
	return out
}

// waitExit waits for the router to stop on its own and returns its output;
// a zero exit status fails the test.
func waitExit(t *testing.T, r *router, timeout time.Duration) string {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(timeout):
		t.Fatalf("router still running after %s without the permissions it needs:\n%s", timeout, r.logTail(4000))
	}
	if r.exitErr == nil {
		t.Errorf("router exited with status 0 without the permissions it needs")
	}
	return r.logTail(1 << 16)
}

// grant binds ServiceAccount sa to exactly perms: a Role per namespace for
// namespaced rules, a ClusterRole for cluster-scoped ones.
func grant(t *testing.T, sa string, perms []certs.Permission) {
	t.Helper()
	ctx := harness.Context(t, 30*time.Second)
	rbac := env.Cluster.Client.RbacV1()
	rules := map[string][]rbacv1.PolicyRule{} // namespace ("" = cluster) -> rules
	for _, p := range perms {
		rule := rbacv1.PolicyRule{APIGroups: []string{p.Group}, Resources: []string{p.Resource}, Verbs: []string{p.Verb}}
		if p.Name != "" {
			rule.ResourceNames = []string{p.Name}
		}
		rules[p.Namespace] = append(rules[p.Namespace], rule)
	}
	name := "certs-test-" + sa
	subject := []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: routerNamespace}}
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for ns, rs := range rules {
		meta := metav1.ObjectMeta{Name: name, Namespace: ns}
		if ns == "" {
			must(rbac.ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: meta, Rules: rs}, metav1.CreateOptions{}))
			must(rbac.ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: meta, Subjects: subject,
				RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name}}, metav1.CreateOptions{}))
		} else {
			must(rbac.Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: meta, Rules: rs}, metav1.CreateOptions{}))
			must(rbac.RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: meta, Subjects: subject,
				RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name}}, metav1.CreateOptions{}))
		}
	}
	t.Cleanup(func() {
		ctx := context.Background()
		for ns := range rules {
			if ns == "" {
				_ = rbac.ClusterRoleBindings().Delete(ctx, name, metav1.DeleteOptions{})
				_ = rbac.ClusterRoles().Delete(ctx, name, metav1.DeleteOptions{})
			} else {
				_ = rbac.RoleBindings(ns).Delete(ctx, name, metav1.DeleteOptions{})
				_ = rbac.Roles(ns).Delete(ctx, name, metav1.DeleteOptions{})
			}
		}
	})
}

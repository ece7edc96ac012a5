package deploy

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// A release namespace and an Istio namespace that are not the manifests'.
const (
	releaseNamespace = "mesh-routing"
	istioNamespace   = "istio-control"
)

// clusterScoped lists the kinds the chart renders with no namespace.
var clusterScoped = map[string]bool{
	"ClusterRole": true, "ClusterRoleBinding": true,
	"MutatingWebhookConfiguration": true, "ValidatingWebhookConfiguration": true,
	"ValidatingAdmissionPolicy": true, "ValidatingAdmissionPolicyBinding": true,
}

// TestHelmChartReleaseNamespace: installed with -n mesh-routing and
// istio.namespace=istio-control, the chart renders the very objects it
// renders into canary-router-system (and so, by TestHelmChartMatchesKustomize,
// the manifests' objects) with every mention of the two namespaces moved:
// object namespaces, the router's ServiceAccount name in the admission
// policies' CEL, their namespaceSelectors and authorizer check, the
// webhooks' Service and exclusions, cert-manager's inject-ca-from and
// dnsNames, the router's and the uninstall hook's flags. Nothing names
// canary-router-system or istio-system, and every namespaced object is in
// the release namespace but the Role and RoleBinding in Istio's.
func TestHelmChartReleaseNamespace(t *testing.T) {
	for _, set := range [][]string{
		nil,
		{"certificates.mode=cert-manager"},
		{"monitoring.enabled=true", "replicas=3"},
	} {
		t.Run(fmt.Sprint(set), func(t *testing.T) {
			args := []string{"template", "canary-router", chartDir, "--namespace", releaseNamespace, "--set", "istio.namespace=" + istioNamespace}
			for _, s := range set {
				args = append(args, "--set", s)
			}
			moved := helmRun(t, args...)
			for _, name := range []string{manifestsNamespace, "istio-system"} {
				for i, line := range strings.Split(string(moved), "\n") {
					if strings.Contains(line, name) {
						t.Errorf("line %d names %s: %s", i+1, name, strings.TrimSpace(line))
					}
				}
			}

			got := objectsByKey(t, moved)
			for k, o := range got {
				kind, _ := o["kind"].(string)
				ns, _ := dig(o, "metadata", "namespace").(string)
				name, _ := dig(o, "metadata", "name").(string)
				switch {
				case clusterScoped[kind]:
					if ns != "" {
						t.Errorf("%s: a cluster-scoped object with a namespace", k)
					}
				case (kind == "Role" || kind == "RoleBinding") && name == "canary-router" && ns == istioNamespace:
					// istiod's EndpointSlices are read in Istio's namespace.
				case ns != releaseNamespace:
					t.Errorf("%s: namespace %q, want the release namespace %s", k, ns, releaseNamespace)
				}
			}
			for _, k := range []string{"rbac.authorization.k8s.io/v1 Role " + istioNamespace + "/canary-router", "rbac.authorization.k8s.io/v1 RoleBinding " + istioNamespace + "/canary-router"} {
				if got[k] == nil {
					t.Errorf("no %s", k)
				}
			}

			// The same objects as in the manifests' namespaces, moved.
			args[4] = manifestsNamespace
			args[6] = "istio.namespace=istio-system"
			def := helmRun(t, args...)
			def = bytes.ReplaceAll(def, []byte(manifestsNamespace), []byte(releaseNamespace))
			def = bytes.ReplaceAll(def, []byte("istio-system"), []byte(istioNamespace))
			want := objectsByKey(t, def)
			for _, k := range sortedUnion(got, want) {
				if !reflect.DeepEqual(got[k], want[k]) {
					gy, _ := yaml.Marshal(got[k])
					wy, _ := yaml.Marshal(want[k])
					t.Errorf("%s: rendered into %s it is not the default render moved there\n--- %s\n%s\n--- default, moved\n%s", k, releaseNamespace, releaseNamespace, gy, wy)
				}
			}
		})
	}
}

// TestHelmChartReleaseNamespaceSpotChecks names the fields that matter
// most, so a failure of the comparison above reads as what broke: the
// admission policies know the router by its ServiceAccount in the release
// namespace, and the webhooks never route the release namespace.
func TestHelmChartReleaseNamespaceSpotChecks(t *testing.T) {
	objs := objectsByKey(t, helmRun(t, "template", "canary-router", chartDir, "--namespace", releaseNamespace,
		"--set", "istio.namespace="+istioNamespace, "--set", "certificates.mode=cert-manager"))
	user := "'system:serviceaccount:" + releaseNamespace + ":canary-router'"
	vap := "admissionregistration.k8s.io/v1 ValidatingAdmissionPolicy <nil>/"
	for _, name := range []string{"canary-router-workload-writes", "canary-router-namespace-writes", "canary-router-configmap-create", "canary-router-operator-commands"} {
		conds, _ := dig(objs[vap+name], "spec", "matchConditions").([]any)
		if len(conds) == 0 || !strings.Contains(fmt.Sprint(dig(conds[0], "expression")), user) {
			t.Errorf("%s: first match condition %v does not name %s", name, conds, user)
		}
	}
	for _, name := range []string{"canary-router-configmap-create", "canary-router-operator-commands"} {
		if got := dig(objs[vap+name], "spec", "matchConstraints", "namespaceSelector", "matchLabels", "kubernetes.io/metadata.name"); got != releaseNamespace {
			t.Errorf("%s: namespaceSelector names %v, want %s", name, got, releaseNamespace)
		}
	}
	vars, _ := dig(objs[vap+"canary-router-operator-commands"], "spec", "variables").([]any)
	if len(vars) == 0 || !strings.Contains(fmt.Sprint(dig(vars[0], "expression")), ".namespace('"+releaseNamespace+"')") {
		t.Errorf("operator-commands: the policy editor check %v does not look in %s", vars, releaseNamespace)
	}
	mwc := objs["admissionregistration.k8s.io/v1 MutatingWebhookConfiguration <nil>/canary-router"]
	if got := dig(mwc, "metadata", "annotations", "cert-manager.io/inject-ca-from"); got != releaseNamespace+"/canary-router-serving" {
		t.Errorf("inject-ca-from %v", got)
	}
	for _, wh := range dig(mwc, "webhooks").([]any) {
		if got := dig(wh, "clientConfig", "service", "namespace"); got != releaseNamespace {
			t.Errorf("webhook %v calls a Service in %v", dig(wh, "name"), got)
		}
		exprs := dig(wh, "namespaceSelector", "matchExpressions").([]any)
		last := exprs[len(exprs)-1]
		if dig(last, "key") != "kubernetes.io/metadata.name" || !strings.Contains(fmt.Sprint(dig(last, "values")), releaseNamespace) {
			t.Errorf("webhook %v does not exclude %s: %v", dig(wh, "name"), releaseNamespace, last)
		}
	}
	dep := objs["apps/v1 Deployment "+releaseNamespace+"/canary-router"]
	args := fmt.Sprint(dig(dep, "spec", "template", "spec", "containers").([]any)[0].(map[string]any)["args"])
	if !strings.Contains(args, "--istio-namespace="+istioNamespace) {
		t.Errorf("router args %s lack --istio-namespace=%s", args, istioNamespace)
	}
}

// TestHelmChartRefusesSharedNamespaces: the router's namespace is never
// routed, so a release in default (helm's namespace when -n is
// forgotten), a kube-* namespace or Istio's own would silently leave its
// pods out of every rollout; the chart refuses it, and the values schema
// refuses an Istio namespace that is not a namespace name.
func TestHelmChartRefusesSharedNamespaces(t *testing.T) {
	for _, args := range [][]string{
		{"--namespace", "default"},
		{"--namespace", "kube-system"},
		{"--namespace", "istio-system"},
		{"--namespace", istioNamespace, "--set", "istio.namespace=" + istioNamespace},
	} {
		out, err := helmTry(t, append([]string{"template", "canary-router", chartDir}, args...)...)
		if err == nil || !bytes.Contains(out, []byte("install canary-router into a namespace of its own")) {
			t.Errorf("helm template %v: err %v, want the chart's refusal\n%s", args, err, out)
		}
	}
	if out, err := helmTry(t, "template", "canary-router", chartDir, "--namespace", releaseNamespace, "--set", "istio.namespace=Istio_NS"); err == nil {
		t.Errorf("istio.namespace=Istio_NS passed the values schema:\n%s", out)
	}
}

// TestHelmChartReadmeNamespaceLabels: the chart renders no Namespace (helm
// needs the release namespace before it installs), so its README gives the
// Pod Security labels of deploy/base/namespace.yaml to add, and NOTES
// prints them when they are missing: both must name every one.
func TestHelmChartReadmeNamespaceLabels(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("base", "namespace.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var ns struct {
		Metadata struct {
			Labels map[string]string `json:"labels"`
		} `json:"metadata"`
	}
	if err := yaml.Unmarshal(raw, &ns); err != nil {
		t.Fatal(err)
	}
	if len(ns.Metadata.Labels) == 0 {
		t.Fatal("deploy/base/namespace.yaml has no labels")
	}
	for _, f := range []string{"README.md", filepath.Join("templates", "NOTES.txt")} {
		doc, err := os.ReadFile(filepath.Join(chartDir, f))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range ns.Metadata.Labels {
			if !bytes.Contains(doc, []byte(k+"="+v)) {
				t.Errorf("chart %s does not give the namespace label %s=%s", f, k, v)
			}
		}
	}
}

package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

const chartDir = "helm/canary-router"

// manifestsNamespace is the router's namespace in deploy/base; the chart
// renders into it when it is the release namespace.
const manifestsNamespace = "canary-router-system"

// helmBin returns the built helm (`make tools`), skipping under -short
// when it is missing, as kubectl does.
func helmBin(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("CANARY_ROUTER_BIN_DIR")
	if dir == "" {
		dir = filepath.Join("..", "_bin")
	}
	bin := filepath.Join(dir, "helm")
	if _, err := os.Stat(bin); err != nil {
		if testing.Short() {
			t.Skipf("%s missing (run `make tools`); skipped in -short mode", bin)
		}
		t.Fatalf("%s missing: run `make tools` to build it", bin)
	}
	return bin
}

func helmRun(t *testing.T, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(helmBin(t), args...)
	// A private helm home, so a developer's repositories and plugins
	// never change what the test renders.
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+home, "HELM_CONFIG_HOME="+home, "HELM_DATA_HOME="+home)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
	}
	return out
}

// objectsByKey decodes a YAML stream into generic objects keyed by
// apiVersion, kind, namespace and name; comments, field order and the
// stream's order do not matter, every value does.
func objectsByKey(t *testing.T, stream []byte) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(stream), 4096)
	for {
		var obj map[string]any
		if err := dec.Decode(&obj); err != nil {
			if errors.Is(err, io.EOF) {
				return out
			}
			t.Fatalf("decode: %v", err)
		}
		if obj == nil {
			continue
		}
		meta, _ := obj["metadata"].(map[string]any)
		key := fmt.Sprintf("%v %v %v/%v", obj["apiVersion"], obj["kind"], meta["namespace"], meta["name"])
		if _, dup := out[key]; dup {
			t.Fatalf("%s rendered twice", key)
		}
		out[key] = obj
	}
}

// TestHelmChartMatchesKustomize holds the chart to the overlays: each
// values setting must render exactly the objects of the overlay it
// stands for, so the two install paths can never drift apart.
func TestHelmChartMatchesKustomize(t *testing.T) {
	cases := []struct {
		name     string
		set      []string
		overlays []string
	}{
		{name: "default", overlays: []string{"overlays/default"}},
		// Every granularity is served by the same manifests (deploy/README.md).
		{name: "namespace granularity", set: []string{"granularity=namespace"}, overlays: []string{"overlays/default"}},
		{name: "cert-manager", set: []string{"certificates.mode=cert-manager"}, overlays: []string{"overlays/cert-manager"}},
		{name: "monitoring", set: []string{"monitoring.enabled=true"}, overlays: []string{"overlays/default", "monitoring"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"template", "canary-router", chartDir, "--namespace", manifestsNamespace}
			for _, s := range tc.set {
				args = append(args, "--set", s)
			}
			got := withoutHooks(objectsByKey(t, helmRun(t, args...)))
			var want []byte
			for _, o := range tc.overlays {
				want = append(want, render(t, o)...)
				want = append(want, []byte("\n---\n")...)
			}
			wantObjs := objectsByKey(t, want)
			// The release namespace exists before helm installs into it,
			// so the chart has no Namespace: TestHelmChartReadmeNamespaceLabels
			// holds its README to the labels this one carries.
			delete(wantObjs, "v1 Namespace <nil>/"+manifestsNamespace)
			for _, k := range sortedUnion(got, wantObjs) {
				g, w := got[k], wantObjs[k]
				switch {
				case g == nil:
					t.Errorf("chart lacks %s", k)
				case w == nil:
					t.Errorf("chart renders %s, which %v does not", k, tc.overlays)
				case !reflect.DeepEqual(g, w):
					gy, _ := yaml.Marshal(g)
					wy, _ := yaml.Marshal(w)
					t.Errorf("%s differs\n--- chart\n%s\n--- kustomize\n%s", k, gy, wy)
				}
			}
		})
	}
}

// TestHelmChartNeverRendersPolicy: whatever the values, install and
// upgrade leave the policy in force alone (deploy/README.md).
func TestHelmChartNeverRendersPolicy(t *testing.T) {
	for _, set := range [][]string{nil, {"granularity=pod", "monitoring.enabled=true"}, {"granularity=namespace", "certificates.mode=cert-manager"}} {
		args := []string{"template", "canary-router", chartDir, "--namespace", manifestsNamespace}
		for _, s := range set {
			args = append(args, "--set", s)
		}
		for k := range objectsByKey(t, helmRun(t, args...)) {
			if strings.HasSuffix(k, "/canary-router-policy") {
				t.Errorf("values %v render the policy %s", set, k)
			}
		}
	}
}

// TestHelmChartLintAndImage: helm lint is clean for every mode, and the
// chart's default image is the versioned one the kustomize base names.
func TestHelmChartLintAndImage(t *testing.T) {
	for _, set := range []string{"granularity=workload", "granularity=namespace", "certificates.mode=cert-manager", "monitoring.enabled=true"} {
		out := helmRun(t, "lint", "--strict", chartDir, "--namespace", manifestsNamespace, "--set", set)
		if !bytes.Contains(out, []byte("0 chart(s) failed")) {
			t.Errorf("helm lint --set %s:\n%s", set, out)
		}
	}
	want := "ghcr.io/canary-router/canary-router:v" + chartAppVersion(t)
	if !bytes.Contains(render(t, "overlays/default"), []byte("image: "+want+"\n")) {
		t.Errorf("deploy/base/kustomization.yaml images: does not name %s (the chart's appVersion)", want)
	}
	out := helmRun(t, "template", "canary-router", chartDir, "--namespace", manifestsNamespace, "--set", "image.repository=registry.example/cr", "--set", "image.tag=v9.9.9")
	if !bytes.Contains(out, []byte("image: registry.example/cr:v9.9.9\n")) {
		t.Error("image.repository and image.tag do not reach the Deployment")
	}
}

// TestHelmChartPrometheusAllowlist: prometheus.allowedURLs reaches the
// router as one --prometheus-allowed-url per entry, and the schema
// refuses what is not an http(s) URL.
func TestHelmChartPrometheusAllowlist(t *testing.T) {
	out := helmRun(t, "template", "canary-router", chartDir, "--namespace", manifestsNamespace,
		"--set", "prometheus.allowedURLs={http://prometheus.monitoring:9090,https://thanos.example:443}")
	for _, want := range []string{"- --prometheus-allowed-url=http://prometheus.monitoring:9090\n", "- --prometheus-allowed-url=https://thanos.example:443\n"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("rendered Deployment lacks %q", want)
		}
	}
	if bytes.Contains(helmRun(t, "template", "canary-router", chartDir, "--namespace", manifestsNamespace), []byte("--prometheus-allowed-url")) {
		t.Error("the default renders an allowed Prometheus URL")
	}
	bin := helmBin(t)
	cmd := exec.Command(bin, "template", "canary-router", chartDir, "--namespace", manifestsNamespace, "--set", "prometheus.allowedURLs={file:///etc/passwd}")
	cmd.Env = append(os.Environ(), "HELM_CONFIG_HOME="+t.TempDir(), "HELM_CACHE_HOME="+t.TempDir(), "HELM_DATA_HOME="+t.TempDir())
	if err := cmd.Run(); err == nil {
		t.Error("the schema accepted a non-http URL in prometheus.allowedURLs")
	}
}

// withoutHooks drops helm hooks: they run at helm install, upgrade or
// uninstall, and have no kustomize counterpart.
func withoutHooks(objs map[string]map[string]any) map[string]map[string]any {
	for k, o := range objs {
		meta, _ := o["metadata"].(map[string]any)
		ann, _ := meta["annotations"].(map[string]any)
		if _, hook := ann["helm.sh/hook"]; hook {
			delete(objs, k)
		}
	}
	return objs
}

// TestHelmChartUninstallHook: helm uninstall first runs `canary-router
// uninstall --apply --keep-objects` in a pre-delete hook Job, whose
// ServiceAccount is granted what that command reads and writes, and whose
// own objects are not labelled part-of=canary-router (uninstall deletes
// the bindings labelled so). uninstallHook.enabled=false drops it.
func TestHelmChartUninstallHook(t *testing.T) {
	objs := objectsByKey(t, helmRun(t, "template", "canary-router", chartDir, "--namespace", manifestsNamespace,
		"--set", "uninstallHook.nodeSelector.pool=system"))
	hooks := map[string]map[string]any{}
	for k, o := range objs {
		meta := o["metadata"].(map[string]any)
		ann, _ := meta["annotations"].(map[string]any)
		if ann["helm.sh/hook"] == nil {
			continue
		}
		hooks[k] = o
		if ann["helm.sh/hook"] != "pre-delete" || ann["helm.sh/hook-delete-policy"] != "before-hook-creation,hook-succeeded" {
			t.Errorf("%s: hook annotations %v, want a pre-delete hook deleted before re-creation and on success", k, ann)
		}
		labels, _ := meta["labels"].(map[string]any)
		if labels["app.kubernetes.io/part-of"] != nil {
			t.Errorf("%s is labelled app.kubernetes.io/part-of: uninstall would delete it while it runs", k)
		}
	}
	for _, k := range []string{
		"v1 ServiceAccount " + manifestsNamespace + "/canary-router-uninstall",
		"rbac.authorization.k8s.io/v1 ClusterRole <nil>/canary-router-uninstall",
		"rbac.authorization.k8s.io/v1 ClusterRoleBinding <nil>/canary-router-uninstall",
		"batch/v1 Job " + manifestsNamespace + "/canary-router-uninstall",
	} {
		if hooks[k] == nil {
			t.Errorf("chart lacks the hook object %s", k)
		}
	}
	job := hooks["batch/v1 Job "+manifestsNamespace+"/canary-router-uninstall"]
	if job == nil {
		t.FailNow()
	}
	if w := job["metadata"].(map[string]any)["annotations"].(map[string]any)["helm.sh/hook-weight"]; w != "0" {
		t.Errorf("Job hook weight %v, want 0 (after its ServiceAccount and roles, at -10)", w)
	}
	pod := job["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)
	c := pod["containers"].([]any)[0].(map[string]any)
	if args, want := fmt.Sprint(c["args"]), "[uninstall --apply --keep-objects --namespace=canary-router-system --istio-namespace=istio-system]"; args != want {
		t.Errorf("Job args %s, want %s", args, want)
	}
	if c["image"] != "ghcr.io/canary-router/canary-router:v"+chartAppVersion(t) || pod["serviceAccountName"] != "canary-router-uninstall" {
		t.Errorf("Job image %v, serviceAccountName %v", c["image"], pod["serviceAccountName"])
	}
	if sel := fmt.Sprint(pod["nodeSelector"]); sel != "map[pool:system]" {
		t.Errorf("Job nodeSelector %s, want uninstallHook.nodeSelector", sel)
	}

	// Every call cmd/canary-router/uninstall*.go makes with --apply
	// --keep-objects, as the rows RBAC must allow.
	need := []string{
		"namespaces get", "namespaces list", "namespaces patch", "pods list", "configmaps get",
		"discovery.k8s.io/endpointslices list",
		"admissionregistration.k8s.io/mutatingwebhookconfigurations list",
		"admissionregistration.k8s.io/mutatingwebhookconfigurations get canary-router",
		"admissionregistration.k8s.io/mutatingwebhookconfigurations delete canary-router",
		"admissionregistration.k8s.io/validatingwebhookconfigurations get canary-router",
		"admissionregistration.k8s.io/validatingwebhookconfigurations delete canary-router",
		"admissionregistration.k8s.io/validatingadmissionpolicies list",
		"admissionregistration.k8s.io/validatingadmissionpolicybindings list",
		"rbac.authorization.k8s.io/clusterroles list", "rbac.authorization.k8s.io/roles list",
		"rbac.authorization.k8s.io/clusterrolebindings list", "rbac.authorization.k8s.io/clusterrolebindings delete",
		"rbac.authorization.k8s.io/rolebindings list", "rbac.authorization.k8s.io/rolebindings delete",
		"authorization.k8s.io/subjectaccessreviews create",
	}
	granted := map[string]bool{}
	for _, r := range hooks["rbac.authorization.k8s.io/v1 ClusterRole <nil>/canary-router-uninstall"]["rules"].([]any) {
		rule := r.(map[string]any)
		names, _ := rule["resourceNames"].([]any)
		for _, g := range rule["apiGroups"].([]any) {
			for _, res := range rule["resources"].([]any) {
				for _, v := range rule["verbs"].([]any) {
					key := fmt.Sprintf("%v/%v %v", g, res, v)
					if g == "" {
						key = fmt.Sprintf("%v %v", res, v)
					}
					if len(names) == 0 {
						granted[key] = true
					}
					for _, n := range names {
						granted[fmt.Sprintf("%s %v", key, n)] = true
					}
				}
			}
		}
	}
	for _, n := range need {
		if !granted[n] {
			t.Errorf("the hook's ClusterRole does not grant %s", n)
		}
	}
	if len(granted) != len(need) {
		t.Errorf("the hook's ClusterRole grants %d rows, uninstall needs %d: %v", len(granted), len(need), granted)
	}

	for k := range objectsByKey(t, helmRun(t, "template", "canary-router", chartDir, "--namespace", manifestsNamespace, "--set", "uninstallHook.enabled=false")) {
		if strings.Contains(k, "canary-router-uninstall") {
			t.Errorf("uninstallHook.enabled=false renders %s", k)
		}
	}
}

// chartAppVersion is the chart's appVersion.
func chartAppVersion(t *testing.T) string {
	t.Helper()
	chart, err := os.ReadFile(filepath.Join(chartDir, "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		AppVersion string `json:"appVersion"`
	}
	if err := yaml.Unmarshal(chart, &meta); err != nil {
		t.Fatal(err)
	}
	return meta.AppVersion
}

func sortedUnion(a, b map[string]map[string]any) []string {
	seen := map[string]bool{}
	for k := range a {
		seen[k] = true
	}
	for k := range b {
		seen[k] = true
	}
	keys := make([]string, 0, len(seen))
	for k := range seen {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// TestHelmChartWarnRestartShare: warnRestartShare reaches serve
// --warn-restart-share, and the schema refuses a share outside 0 to 1.
func TestHelmChartWarnRestartShare(t *testing.T) {
	if out := helmRun(t, "template", "canary-router", chartDir, "--namespace", manifestsNamespace); !bytes.Contains(out, []byte("- --warn-restart-share=0.25\n")) {
		t.Error("the default does not render --warn-restart-share=0.25")
	}
	if out := helmRun(t, "template", "canary-router", chartDir, "--namespace", manifestsNamespace, "--set", "warnRestartShare=0.1"); !bytes.Contains(out, []byte("- --warn-restart-share=0.1\n")) {
		t.Error("warnRestartShare=0.1 does not reach the Deployment")
	}
	// --set passes 0.1 as a string, --set-json as a number: both are checked.
	for _, bad := range [][]string{{"--set", "warnRestartShare=1.5"}, {"--set-json", "warnRestartShare=1.5"}, {"--set", "warnRestartShare=lots"}} {
		cmd := exec.Command(helmBin(t), append([]string{"template", "canary-router", chartDir, "--namespace", manifestsNamespace}, bad...)...)
		cmd.Env = append(os.Environ(), "HELM_CONFIG_HOME="+t.TempDir(), "HELM_CACHE_HOME="+t.TempDir(), "HELM_DATA_HOME="+t.TempDir())
		if err := cmd.Run(); err == nil {
			t.Errorf("the schema accepted %v", bad)
		}
	}
	if out := helmRun(t, "template", "canary-router", chartDir, "--namespace", manifestsNamespace, "--set-json", "warnRestartShare=0.5"); !bytes.Contains(out, []byte("- --warn-restart-share=0.5\n")) {
		t.Error("warnRestartShare=0.5 as a number does not reach the Deployment")
	}
}

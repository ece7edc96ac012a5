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
			args := []string{"template", "canary-router", chartDir, "--namespace", "istio-system"}
			for _, s := range tc.set {
				args = append(args, "--set", s)
			}
			got := objectsByKey(t, helmRun(t, args...))
			var want []byte
			for _, o := range tc.overlays {
				want = append(want, render(t, o)...)
				want = append(want, []byte("\n---\n")...)
			}
			wantObjs := objectsByKey(t, want)
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
		args := []string{"template", "canary-router", chartDir}
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
		out := helmRun(t, "lint", "--strict", chartDir, "--set", set)
		if !bytes.Contains(out, []byte("0 chart(s) failed")) {
			t.Errorf("helm lint --set %s:\n%s", set, out)
		}
	}
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
	want := "ghcr.io/canary-router/canary-router:v" + meta.AppVersion
	if !bytes.Contains(render(t, "overlays/default"), []byte("image: "+want+"\n")) {
		t.Errorf("deploy/base/kustomization.yaml images: does not name %s (the chart's appVersion)", want)
	}
	out := helmRun(t, "template", "canary-router", chartDir, "--set", "image.repository=registry.example/cr", "--set", "image.tag=v9.9.9")
	if !bytes.Contains(out, []byte("image: registry.example/cr:v9.9.9\n")) {
		t.Error("image.repository and image.tag do not reach the Deployment")
	}
}

// TestHelmChartPrometheusAllowlist: prometheus.allowedURLs reaches the
// router as one --prometheus-allowed-url per entry, and the schema
// refuses what is not an http(s) URL.
func TestHelmChartPrometheusAllowlist(t *testing.T) {
	out := helmRun(t, "template", "canary-router", chartDir,
		"--set", "prometheus.allowedURLs={http://prometheus.monitoring:9090,https://thanos.example:443}")
	for _, want := range []string{"- --prometheus-allowed-url=http://prometheus.monitoring:9090\n", "- --prometheus-allowed-url=https://thanos.example:443\n"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("rendered Deployment lacks %q", want)
		}
	}
	if bytes.Contains(helmRun(t, "template", "canary-router", chartDir), []byte("--prometheus-allowed-url")) {
		t.Error("the default renders an allowed Prometheus URL")
	}
	bin := helmBin(t)
	cmd := exec.Command(bin, "template", "canary-router", chartDir, "--set", "prometheus.allowedURLs={file:///etc/passwd}")
	cmd.Env = append(os.Environ(), "HELM_CONFIG_HOME="+t.TempDir(), "HELM_CACHE_HOME="+t.TempDir(), "HELM_DATA_HOME="+t.TempDir())
	if err := cmd.Run(); err == nil {
		t.Error("the schema accepted a non-http URL in prometheus.allowedURLs")
	}
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

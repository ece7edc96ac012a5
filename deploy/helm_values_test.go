package deploy

import (
	"os"
	"os/exec"
	"reflect"
	"testing"
)

// TestHelmChartValues: the scheduling and pod values Helm users expect
// reach the Deployment, and the PodDisruptionBudget follows the replicas.
func TestHelmChartValues(t *testing.T) {
	out := helmRun(t, "template", "canary-router", chartDir, "--namespace", manifestsNamespace,
		"--set", "nodeSelector.pool=system",
		"--set", "tolerations[0].key=dedicated,tolerations[0].operator=Exists,tolerations[0].effect=NoSchedule",
		"--set", "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].key=pool",
		"--set", "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].operator=Exists",
		"--set", "priorityClassName=platform-critical",
		"--set", "imagePullSecrets[0].name=regcred",
		"--set", "podAnnotations.team=mesh",
		"--set", "extraArgs[0]=--injector-probe-interval=2s",
		"--set", "replicas=3")
	objs := objectsByKey(t, out)
	dep := objs["apps/v1 Deployment canary-router-system/canary-router"]
	if dep == nil {
		t.Fatalf("no Deployment rendered; keys: %v", sortedUnion(objs, nil))
	}
	pod := dig(dep, "spec", "template", "spec").(map[string]any)
	checks := []struct {
		what string
		got  any
		want any
	}{
		{"nodeSelector", pod["nodeSelector"], map[string]any{"pool": "system"}},
		{"tolerations", pod["tolerations"], []any{map[string]any{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}}},
		{"affinity replaces the default", dig(pod, "affinity", "podAntiAffinity"), nil},
		{"affinity", dig(pod, "affinity", "nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution", "nodeSelectorTerms").([]any)[0],
			map[string]any{"matchExpressions": []any{map[string]any{"key": "pool", "operator": "Exists"}}}},
		{"priorityClassName", pod["priorityClassName"], "platform-critical"},
		{"imagePullSecrets", pod["imagePullSecrets"], []any{map[string]any{"name": "regcred"}}},
		{"podAnnotations", dig(dep, "spec", "template", "metadata", "annotations", "team"), "mesh"},
		{"replicas", dig(dep, "spec", "replicas"), float64(3)},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s: got %#v, want %#v", c.what, c.got, c.want)
		}
	}
	args := dig(pod, "containers").([]any)[0].(map[string]any)["args"].([]any)
	if last := args[len(args)-1]; last != "--injector-probe-interval=2s" {
		t.Errorf("extraArgs: last argument %v, want --injector-probe-interval=2s after the chart's own", last)
	}
	if objs["policy/v1 PodDisruptionBudget canary-router-system/canary-router"] == nil {
		t.Error("3 replicas render no PodDisruptionBudget")
	}

	one := objectsByKey(t, helmRun(t, "template", "canary-router", chartDir, "--namespace", manifestsNamespace, "--set", "replicas=1"))
	if one["policy/v1 PodDisruptionBudget canary-router-system/canary-router"] != nil {
		t.Error("1 replica renders a PodDisruptionBudget with minAvailable 1, which blocks every node drain")
	}
	// The schema refuses an extra argument that is not a flag.
	if out, err := helmTry(t, "template", "canary-router", chartDir, "--namespace", manifestsNamespace, "--set", "extraArgs[0]=serve"); err == nil {
		t.Errorf("extraArgs [serve] passed the values schema:\n%s", out)
	}
}

// helmTry runs helm as helmRun does and returns its error instead of
// failing the test.
func helmTry(t *testing.T, args ...string) ([]byte, error) {
	t.Helper()
	cmd := exec.Command(helmBin(t), args...)
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+home, "HELM_CONFIG_HOME="+home, "HELM_DATA_HOME="+home)
	return cmd.CombinedOutput()
}

// dig walks nested maps; nil when a key is missing.
func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

package deploy

import (
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/canary-router/canary-router/policy"
)

// policyConfigMap is the policy ConfigMap the router watches.
const policyConfigMap = "canary-router-policy"

// TestExamplePolicies holds the example policies in deploy/policy/ (created
// once by the operator, never part of the install) to the policy contract:
// the router's ConfigMap, a valid policy.
func TestExamplePolicies(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("policy", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no example policies in deploy/policy: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var cm corev1.ConfigMap
			if err := utilyaml.Unmarshal(data, &cm); err != nil {
				t.Fatal(err)
			}
			if cm.Kind != "ConfigMap" || cm.Name != policyConfigMap || cm.Namespace != "canary-router-system" {
				t.Errorf("%s is %s %s/%s, want ConfigMap canary-router-system/%s", f, cm.Kind, cm.Namespace, cm.Name, policyConfigMap)
			}
			if _, err := policy.Parse([]byte(cm.Data["policy.yaml"])); err != nil {
				t.Errorf("invalid policy: %v", err)
			}
		})
	}
}

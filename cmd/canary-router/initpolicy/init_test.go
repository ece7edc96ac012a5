package initpolicy

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/canary-router/canary-router/istio"
	"github.com/canary-router/canary-router/istio/istiotest"
	"github.com/canary-router/canary-router/policy"
)

func TestChooseStarter(t *testing.T) {
	rev := func(r string) istio.Config { return istio.Config{Name: "istio-sidecar-injector-" + r, Rev: r} }
	tag := func(tg, r string) istio.Config {
		return istio.Config{Name: "istio-revision-tag-" + tg, Rev: r, Tag: tg}
	}
	tests := []struct {
		name     string
		configs  []istio.Config
		revision string
		pods     map[string]int
		want     string
		wantErr  []string
		notErr   []string // a revision picked by name order
	}{
		{name: "default tag", configs: []istio.Config{rev("1-24"), rev("1-25"), tag("default", "1-24")}, want: "default"},
		{name: "non-revisioned install", configs: []istio.Config{{Name: "istio-sidecar-injector", Rev: "default"}}, want: "default"},
		{name: "one revision, no tag", configs: []istio.Config{rev("1-30")}, want: "1-30"},
		{name: "one revision and a non-default tag", configs: []istio.Config{rev("1-30"), tag("prod", "1-30")}, want: "1-30"},
		{name: "several revisions, no default", configs: []istio.Config{rev("1-24"), rev("1-25"), tag("prod", "1-24")},
			wantErr: []string{"several revisions", "1-24, 1-25", "prod -> 1-24", "--revision <revision>", "none is suggested"},
			notErr:  []string{"init --revision 1-24"}},
		// The new revision sorts first; the suggestion follows the pods.
		{name: "several revisions: suggests the one injecting most pods", configs: []istio.Config{rev("canary"), rev("stable")},
			pods:    map[string]int{"stable": 40, "canary": 2},
			wantErr: []string{"most likely stable, which injects 40 of the 42 running workload pods", "canary-router init --revision stable"}},
		{name: "several revisions, a tie", configs: []istio.Config{rev("canary"), rev("stable")},
			pods:    map[string]int{"stable": 3, "canary": 3},
			wantErr: []string{"equally many", "--revision <revision>"}, notErr: []string{"init --revision canary"}},
		{name: "no Istio", configs: []istio.Config{{Name: "canary-router"}}, wantErr: []string{"no Istio revision found"}},
		{name: "--revision names a revision", configs: []istio.Config{rev("1-24"), rev("1-25")}, revision: "1-25", want: "1-25"},
		{name: "--revision names a tag", configs: []istio.Config{rev("1-24"), tag("prod", "1-24")}, revision: "prod", want: "prod"},
		{name: "--revision unknown", configs: []istio.Config{rev("1-24")}, revision: "1-99", wantErr: []string{"--revision 1-99", "revisions 1-24"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := chooseStarter(istiotest.State(tt.configs), tt.revision, tt.pods)
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("chose %q, want an error", s.target)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not say %q", err, w)
					}
				}
				for _, w := range tt.notErr {
					if strings.Contains(err.Error(), w) {
						t.Errorf("error %q suggests %q", err, w)
					}
				}
				return
			}
			if err != nil || s.target != tt.want {
				t.Fatalf("got %q, %v; want %q", s.target, err, tt.want)
			}
			doc := starterDoc(s, policy.GranularityPod, "istio-system")
			p, err := policy.Parse([]byte(doc))
			if err != nil {
				t.Fatalf("starter policy invalid: %v\n%s", err, doc)
			}
			if len(p.Targets) != 1 || p.Targets[0].Revision != tt.want || p.Targets[0].Weight != 100 || p.Granularity != policy.GranularityPod {
				t.Errorf("policy %+v, want %s at 100 in pod granularity", p, tt.want)
			}
		})
	}
}

func initDefaults() Options {
	return Options{namespace: "canary-router-system", configMap: "canary-router-policy", istioNamespace: "istio-system",
		granularity: "workload", output: "yaml"}
}

func TestInitPrintsAPolicyForTheLiveRevision(t *testing.T) {
	client := fake.NewClientset(istiotest.InjectorObjects("1-30")...)
	for _, output := range []string{"yaml", "json"} {
		var out, errOut bytes.Buffer
		c := initDefaults()
		c.output = output
		if err := runInit(context.Background(), client, c, &out, &errOut); err != nil {
			t.Fatalf("-o %s: %v", output, err)
		}
		var cm corev1.ConfigMap
		if output == "json" {
			if err := json.Unmarshal(out.Bytes(), &cm); err != nil {
				t.Fatalf("-o json: %v\n%s", err, out.String())
			}
		} else {
			cm = configMapFromYAML(t, out.Bytes())
		}
		p, err := policy.Parse([]byte(cm.Data["policy.yaml"]))
		if err != nil || len(p.Targets) != 1 || p.Targets[0].Revision != "1-30" {
			t.Errorf("-o %s: policy %+v (%v), want 1-30 at 100:\n%s", output, p, err, out.String())
		}
		if cm.Name != "canary-router-policy" || cm.Namespace != "canary-router-system" {
			t.Errorf("-o %s: ConfigMap %s/%s", output, cm.Namespace, cm.Name)
		}
	}
	if _, err := client.CoreV1().ConfigMaps("canary-router-system").Get(context.Background(), "canary-router-policy", metav1.GetOptions{}); err == nil {
		t.Error("init without --apply created the ConfigMap")
	}
}

func TestInitApplyNeverOverwrites(t *testing.T) {
	ctx := context.Background()
	client := fake.NewClientset(istiotest.InjectorObjects("1-30")...)
	c := initDefaults()
	c.apply = true
	var out, errOut bytes.Buffer
	if err := runInit(ctx, client, c, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	cm, err := client.CoreV1().ConfigMaps(c.namespace).Get(ctx, c.configMap, metav1.GetOptions{})
	if err != nil || !strings.Contains(cm.Data["policy.yaml"], `revision: "1-30"`) {
		t.Fatalf("ConfigMap after --apply: %v, %v", cm, err)
	}

	edited := "granularity: pod\ntargets: [{revision: 1-30, weight: 70}, {revision: 1-31, weight: 30}]\n"
	cm.Data["policy.yaml"] = edited
	if _, err := client.CoreV1().ConfigMaps(c.namespace).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := runInit(ctx, client, c, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "already exists: left unchanged") {
		t.Errorf("second --apply said:\n%s", out.String())
	}
	cm, _ = client.CoreV1().ConfigMaps(c.namespace).Get(ctx, c.configMap, metav1.GetOptions{})
	if cm.Data["policy.yaml"] != edited {
		t.Errorf("--apply changed an existing policy:\n%s", cm.Data["policy.yaml"])
	}
}

func TestInitRefusesAnAmbiguousInstall(t *testing.T) {
	objs := append(istiotest.InjectorObjects("1-24"), istiotest.InjectorObjects("1-25")...)
	var out, errOut bytes.Buffer
	err := runInit(context.Background(), fake.NewClientset(objs...), initDefaults(), &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "1-24, 1-25") || out.Len() != 0 {
		t.Errorf("got %v and output %q; want a refusal naming 1-24 and 1-25, and no policy", err, out.String())
	}
}

func configMapFromYAML(t *testing.T, data []byte) corev1.ConfigMap {
	t.Helper()
	var cm corev1.ConfigMap
	if err := utilyaml.Unmarshal(data, &cm); err != nil {
		t.Fatalf("output is not a ConfigMap: %v\n%s", err, data)
	}
	return cm
}

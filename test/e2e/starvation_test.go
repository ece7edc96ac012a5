package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/canary-router/canary-router/test/harness"
)

// nestedTemplatePolicy is the 2.8 KB policy that wedged the router when
// gate queries were Go templates: forty templates, each calling the one
// below twice.
func nestedTemplatePolicy() string {
	var q strings.Builder
	q.WriteString(`{{define "t0"}}x{{end}}`)
	for i := 1; i < 40; i++ {
		fmt.Fprintf(&q, `{{define "t%d"}}{{template "t%d" .}}{{template "t%d" .}}{{end}}`, i, i-1, i-1)
	}
	q.WriteString(`{{template "t39" .}}`)
	return "granularity: pod\ntargets: [{revision: stable, weight: 100}, {revision: canary, weight: 0}]\n" +
		"rollout:\n  steps: [{canary: 10}]\n  gates:\n    prometheus:\n      url: http://prometheus:9090\n" +
		"      queries: [{name: bomb, max: 0, query: '" + q.String() + "'}]\n"
}

// TestHostileValidationsDoNotStarvePods keeps eight validations of the
// nested-template policy in flight against the router's /validate-policy
// while pods are created through kube-apiserver: every validation is
// refused with the field named, and no pod creation fails, for a timeout
// or otherwise.
func TestHostileValidationsDoNotStarvePods(t *testing.T) {
	ctx := harness.Context(t, 3*time.Minute)
	if out, err := applyPolicy(t, policyYAML("pod", 100, 0)); err != nil {
		t.Fatalf("policy: %v\n%s", err, out)
	}
	// The router serves /validate-policy when it watches its ConfigMap.
	if err := env.router.startWatching(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.router.start(context.Background(), policyYAML("pod", 100, 0)); err != nil {
			t.Errorf("restarting the router as the other tests expect it: %v", err)
		}
	})
	const ns = "starve"
	managedNamespace(t, ns)
	env.WaitServiceAccount(t, ns)

	cm := corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Name: policyConfigMap, Namespace: routerNamespace},
		Data:       map[string]string{"policy.yaml": nestedTemplatePolicy()}}
	raw, _ := json.Marshal(cm)
	hostile, _ := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID: "hostile", Namespace: routerNamespace, Name: policyConfigMap, Operation: admissionv1.Update,
			Kind:     metav1.GroupVersionKind{Version: "v1", Kind: "ConfigMap"},
			Resource: metav1.GroupVersionResource{Version: "v1", Resource: "configmaps"},
			Object:   runtime.RawExtension{Raw: raw},
		},
	})
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(env.Cluster.CA.CertPEM)
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{ForceAttemptHTTP2: true,
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}

	const duration = 20 * time.Second
	stop := make(chan struct{})
	time.AfterFunc(duration, func() { close(stop) })
	var sent, refused atomic.Int64
	var oddMu sync.Mutex
	var odd []string
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				sent.Add(1)
				resp, err := client.Post(env.router.url("/validate-policy"), "application/json", bytes.NewReader(hostile))
				var out admissionv1.AdmissionReview
				if err == nil {
					err = json.NewDecoder(resp.Body).Decode(&out)
					resp.Body.Close()
				}
				if err == nil && out.Response != nil && !out.Response.Allowed && out.Response.Result != nil &&
					strings.Contains(out.Response.Result.Message, `gate "bomb": {{ define }} is not allowed`) {
					refused.Add(1)
					continue
				}
				oddMu.Lock()
				odd = append(odd, fmt.Sprintf("%v %+v", err, out.Response))
				oddMu.Unlock()
			}
		})
	}
	var created, routed, failed, timedOut atomic.Int64
	var failMu sync.Mutex
	var failures []string
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				p, err := env.Cluster.Client.CoreV1().Pods(ns).Create(pctx, harness.Pod("steady-"), metav1.CreateOptions{})
				cancel()
				if err != nil {
					failed.Add(1)
					msg := err.Error()
					if strings.Contains(msg, "timeout") || strings.Contains(msg, "deadline exceeded") || strings.Contains(msg, "within") {
						timedOut.Add(1)
					}
					failMu.Lock()
					failures = append(failures, msg)
					failMu.Unlock()
					continue
				}
				created.Add(1)
				if _, ok := p.Annotations[harness.DecisionAnnotation]; ok {
					routed.Add(1)
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	t.Logf("RESULT over %v: hostile validations sent %d, refused with the field message %d; pods created %d (routed %d), failed %d, failed for a timeout %d",
		duration, sent.Load(), refused.Load(), created.Load(), routed.Load(), failed.Load(), timedOut.Load())
	if len(odd) > 0 {
		t.Errorf("%d hostile validations not refused with the field message; first: %s", len(odd), odd[0])
	}
	if len(failures) > 0 {
		t.Errorf("%d pod creations failed (%d for a timeout); first: %s", failed.Load(), timedOut.Load(), failures[0])
	}
	if created.Load() < 20 || routed.Load() != created.Load() {
		t.Errorf("pods created %d, routed %d: want at least 20, all routed", created.Load(), routed.Load())
	}
}

package certse2e

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canary-router/canary-router/test/harness"
)

// Short lifetimes so several rotations happen within the load window:
// a serving certificate renews about every 13 s, a CA rolls over about
// every 27 s (stage, then promote 5 s later, retire 5 s after that).
var rotationFlags = []string{
	"--cert-validity", "20s",
	"--ca-validity", "40s",
	"--cert-check-interval", "1s",
	"--ca-overlap", "5s",
}

const (
	loadDuration = 75 * time.Second
	loadWorkers  = 2
)

// TestRotationUnderLoad creates pods continuously through two routers
// (every pod needs a TLS handshake with each) while their serving
// certificates and their CA rotate, and requires every creation to
// succeed.
func TestRotationUnderLoad(t *testing.T) {
	deleteCASecret(t)
	a, b := newRouter(t, "a"), newRouter(t, "b")
	installWebhooks(t, a, b)
	for _, r := range []*router{a, b} {
		r.start(t, r.selfManagedArgs(env.Cluster.Kubeconfig, rotationFlags...)...)
	}
	for _, r := range []*router{a, b} {
		r.waitReady(t, 30*time.Second)
	}
	waitBundlesTrust(t, currentCA(t), 10*time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), loadDuration)
	defer cancel()
	obs := newObserver(a, b)
	var obsDone sync.WaitGroup
	obsDone.Go(func() { obs.run(ctx) })

	var created, failed atomic.Int64
	var errMu sync.Mutex
	var firstErrs []string
	var workers sync.WaitGroup
	began := time.Now()
	for w := range loadWorkers {
		workers.Go(func() {
			client := env.Cluster.Client.CoreV1().Pods(routedNamespace)
			for i := 0; ctx.Err() == nil; i++ {
				// Its own deadline, so the last creation is not cut short
				// by the end of the load window and counted as a failure.
				cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
				pod, err := client.Create(cctx, harness.Pod(fmt.Sprintf("load-%d-%d", w, i)), metav1.CreateOptions{})
				ccancel()
				if err != nil {
					failed.Add(1)
					errMu.Lock()
					if len(firstErrs) < 10 {
						firstErrs = append(firstErrs, fmt.Sprintf("%s: %v", time.Since(began).Round(time.Millisecond), err))
					}
					errMu.Unlock()
					continue
				}
				if rev := pod.Labels["istio.io/rev"]; rev != "stable" && rev != "canary" {
					failed.Add(1)
					errMu.Lock()
					firstErrs = append(firstErrs, fmt.Sprintf("pod %s not routed: labels %v", pod.Name, pod.Labels))
					errMu.Unlock()
					continue
				}
				created.Add(1)
				// Leave some CPU to the control plane on a small machine.
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	workers.Wait()
	elapsed := time.Since(began)
	cancel()
	obsDone.Wait()

	servingRot, caRot, cas := obs.summary()
	t.Logf("RESULT pods created during rotation: %d in %s (%.0f/s), failed: %d", created.Load(), elapsed.Round(time.Second),
		float64(created.Load())/elapsed.Seconds(), failed.Load())
	for _, r := range []*router{a, b} {
		m := r.metrics(t)
		t.Logf("RESULT router %s: serving certificates seen %d (rotations %d), CAs seen %d (CA rotations %d); metrics: serving rotations %g, ca rotations %g, caBundle patches %g, sync errors %g",
			r.name, servingRot[r.name]+1, servingRot[r.name], caRot[r.name]+1, caRot[r.name],
			m[`canary_router_cert_rotations_total{cert="serving"}`], m[`canary_router_cert_rotations_total{cert="ca"}`],
			m["canary_router_cabundle_patches_total"], m["canary_router_cert_sync_errors_total"])
	}
	t.Logf("RESULT distinct CAs served: %d (%s)", len(cas), strings.Join(cas, ", "))
	for _, e := range firstErrs {
		t.Errorf("creation failed: %s", e)
	}
	if failed.Load() != 0 {
		t.Fatalf("%d of %d pod creations failed during rotation", failed.Load(), failed.Load()+created.Load())
	}
	for _, r := range []*router{a, b} {
		if servingRot[r.name] < 3 || caRot[r.name] < 1 {
			t.Errorf("router %s: %d serving and %d CA rotations in %s; the lifetimes should give at least 3 and 1",
				r.name, servingRot[r.name], caRot[r.name], elapsed.Round(time.Second))
		}
	}
	if obs.probeErrors.Load() > 0 {
		t.Errorf("%d TLS probes of the routers failed", obs.probeErrors.Load())
	}
}

// observer records, by probing each router's TLS port, which serving
// certificate and which CA it presents over time: the rotations counted
// from the outside, as the apiserver sees them.
type observer struct {
	routers     []*router
	mu          sync.Mutex
	leaves      map[string][]string // router -> serials in order seen
	issuers     map[string][]string // router -> issuing CA key ids in order seen
	names       map[string]string   // CA key id -> common name
	probeErrors atomic.Int64
}

func newObserver(rs ...*router) *observer {
	return &observer{routers: rs, leaves: map[string][]string{}, issuers: map[string][]string{}, names: map[string]string{}}
}

func (o *observer) run(ctx context.Context) {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		for _, r := range o.routers {
			leaf, err := r.servedCert()
			if err != nil {
				if ctx.Err() == nil {
					o.probeErrors.Add(1)
				}
				continue
			}
			o.record(r.name, leaf)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (o *observer) record(name string, leaf *x509.Certificate) {
	o.mu.Lock()
	defer o.mu.Unlock()
	appendChange := func(list []string, v string) []string {
		if len(list) == 0 || list[len(list)-1] != v {
			return append(list, v)
		}
		return list
	}
	o.leaves[name] = appendChange(o.leaves[name], leaf.SerialNumber.String())
	ca := hex.EncodeToString(leaf.AuthorityKeyId)
	o.issuers[name] = appendChange(o.issuers[name], ca)
	o.names[ca] = leaf.Issuer.CommonName
}

// summary returns serving and CA rotations per router and the CAs seen.
func (o *observer) summary() (serving, ca map[string]int, cas []string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	serving, ca = map[string]int{}, map[string]int{}
	for name, l := range o.leaves {
		serving[name] = len(l) - 1
	}
	for name, l := range o.issuers {
		ca[name] = len(l) - 1
	}
	for _, n := range o.names {
		cas = append(cas, n)
	}
	sort.Strings(cas)
	return serving, ca, cas
}

package faults

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canary-router/canary-router/test/harness"
)

const (
	flipLoad  = 25 * time.Second
	flipEvery = 1500 * time.Millisecond
)

// flipPolicies are the policies the flips cycle through, with the
// revision each one gives every pod ("" when it splits them; "-" when it
// names no available target, so the router must refuse).
var flipPolicies = []struct{ doc, want string }{
	{podPolicy("flip-stable", 100, 0), "stable"},
	{podPolicy("flip-canary", 0, 100), "canary"},
	{"granularity: workload\nseed: flip-half\ntargets:\n  - revision: stable\n    weight: 50\n  - revision: canary\n    weight: 50\n", ""},
	{"granularity: pod\nseed: flip-gone\ntargets:\n  - revision: gone\n    weight: 100\n", "-"},
}

// TestPolicyFlipsDuringCertRotation creates pods continuously while the
// policy flips every 1.5 s and the router's serving certificate and CA
// rotate (self-managed certificates with lifetimes of seconds). The only
// failed admissions allowed are the ones a policy asks for (a policy
// whose only target is not installed); every policy write passes the
// router's validating webhook, and every pod created names the policy
// that routed it and carries the revision that policy gives.
func TestPolicyFlipsDuringCertRotation(t *testing.T) {
	r := rotatingRouter(t)
	useRouter(t, r)
	const ns = "flips"
	managedNamespace(t, ns)
	applyPolicy(t, flipPolicies[0].doc)
	wantByDigest := map[string]string{}
	for _, p := range flipPolicies {
		wantByDigest[harness.Digest(p.doc)] = p.want
	}

	ctx, cancel := context.WithTimeout(context.Background(), flipLoad)
	defer cancel()
	obs := &certObserver{addr: fmt.Sprintf("127.0.0.1:%d", r.port)}
	var bg sync.WaitGroup
	bg.Go(func() { obs.run(ctx) })
	load := startCreating(ns, 2, 50*time.Millisecond)
	var flips, flipErrors int
	var firstFlipErr error
	for i := 1; ctx.Err() == nil; i++ {
		select {
		case <-ctx.Done():
		case <-time.After(flipEvery):
			wctx, wcancel := context.WithTimeout(context.Background(), 15*time.Second)
			err := env.WritePolicy(wctx, flipPolicies[i%len(flipPolicies)].doc)
			wcancel()
			flips++
			if err != nil {
				flipErrors++
				if firstFlipErr == nil {
					firstFlipErr = err
				}
			}
		}
	}
	load.stop()
	bg.Wait()
	// Leave a routable policy for whatever runs next.
	applyPolicy(t, flipPolicies[0].doc)

	got := load.counts(time.Time{}, time.Time{})
	t.Logf("RESULT policy flips during cert rotation: %s of load, %d policy writes (%d failed), serving certificates rotated %d times, CA %d times (%d TLS probe errors); creations: %s",
		flipLoad, flips, flipErrors, obs.leaves.Load()-1, obs.cas.Load()-1, obs.errors.Load(), format(got))
	load.expectOnly(t, "during flips and rotation", got, outCreated, outNoTarget)
	if flipErrors > 0 {
		t.Errorf("%d policy writes failed, first: %v", flipErrors, firstFlipErr)
	}
	if got[outCreated] == 0 || got[outNoTarget] == 0 {
		t.Errorf("want both created pods and refusals the policy asked for, got %s", format(got))
	}
	if obs.leaves.Load() < 3 || obs.cas.Load() < 2 {
		t.Errorf("saw %d serving certificates and %d CAs; the lifetimes should give at least 3 and 2", obs.leaves.Load(), obs.cas.Load())
	}
	checkFlipPods(t, ns, wantByDigest)
}

// checkFlipPods checks each created pod against the policy its decision
// names.
func checkFlipPods(t *testing.T, ns string, wantByDigest map[string]string) {
	t.Helper()
	list, err := env.Cluster.Client.CoreV1().Pods(ns).List(harness.Context(t, 30*time.Second), metav1.ListOptions{LabelSelector: "load=true"})
	if err != nil {
		t.Fatal(err)
	}
	perPolicy := map[string]int{}
	wrong := 0
	for i := range list.Items {
		p := &list.Items[i]
		d, _ := harness.ParseDecision(p.ObjectMeta)
		want, known := wantByDigest[d.Policy]
		perPolicy[d.Policy]++
		if !known || want == "-" || (want != "" && d.Revision != want) {
			wrong++
			if wrong <= 5 {
				t.Errorf("pod %s: decision %+v does not follow a flip policy", p.Name, d)
			}
		}
	}
	_, bad := audit(t, ns, "load=true")
	t.Logf("RESULT policy flips during cert rotation: %d pods by policy digest %v; %d not following their policy, %d not routed or mis-injected",
		len(list.Items), perPolicy, wrong, bad)
}

// certObserver probes the router's TLS port and counts the distinct
// serving certificates and issuing CAs it presents: rotations as the
// apiserver sees them.
type certObserver struct {
	addr              string
	leaves, cas       atomic.Int64
	errors            atomic.Int64
	seenLeaf, seenCAs map[string]bool
}

func (o *certObserver) run(ctx context.Context) {
	o.seenCAs, o.seenLeaf = map[string]bool{}, map[string]bool{}
	for ctx.Err() == nil {
		d := &net.Dialer{Timeout: 2 * time.Second}
		conn, err := tls.DialWithDialer(d, "tcp", o.addr, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			o.errors.Add(1)
		} else {
			leaf := conn.ConnectionState().PeerCertificates[0]
			conn.Close()
			if s := leaf.SerialNumber.String(); !o.seenLeaf[s] {
				o.seenLeaf[s] = true
				o.leaves.Add(1)
			}
			if ca := hex.EncodeToString(leaf.AuthorityKeyId); !o.seenCAs[ca] {
				o.seenCAs[ca] = true
				o.cas.Add(1)
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(250 * time.Millisecond):
		}
	}
}

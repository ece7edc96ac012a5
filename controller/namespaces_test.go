package controller

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/canary-router/canary-router/istio"
	"github.com/canary-router/canary-router/policy/inforce"
	"github.com/canary-router/canary-router/view/nsview"
)

type fakeNamespaces map[string]nsview.Namespace

func (f fakeNamespaces) Get(name string) (nsview.Namespace, bool) { ns, ok := f[name]; return ns, ok }
func (f fakeNamespaces) HasSynced() bool                          { return true }
func (f fakeNamespaces) List() []nsview.Namespace {
	out := make([]nsview.Namespace, 0, len(f))
	for _, ns := range f {
		out = append(out, ns)
	}
	return out
}

type recordingPatcher struct {
	mu      sync.Mutex
	patches map[string][]byte
	fail    error
}

func (p *recordingPatcher) PatchNamespace(_ context.Context, name string, patch []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail != nil {
		return p.fail
	}
	p.patches[name] = patch
	return nil
}

func snapshot(t *testing.T, doc string) *inforce.Snapshot {
	t.Helper()
	s, err := inforce.NewStore(time.Now, nil, nil).Apply([]byte(doc), "test")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func state(ready ...string) *istio.State {
	var eps []istio.Endpoints
	for _, r := range ready {
		eps = append(eps, istio.Endpoints{Service: "istiod-" + r, Ready: true})
	}
	return istio.NewState([]istio.Config{
		{Name: "istio-sidecar-injector-stable", Rev: "stable"},
		{Name: "istio-sidecar-injector-canary", Rev: "canary"},
	}, eps, "istio-system", "canary-router")
}

type patchView struct {
	Metadata struct {
		ResourceVersion string             `json:"resourceVersion"`
		Labels          map[string]*string `json:"labels"`
		Annotations     map[string]string  `json:"annotations"`
	} `json:"metadata"`
}

func TestNamespaceReconcile(t *testing.T) {
	const nsPolicy = "granularity: namespace\nseed: s\ntargets: [{revision: stable, weight: 100}, {revision: canary, weight: 0}]\n"
	const wlPolicy = "granularity: workload\ntargets: [{revision: stable, weight: 100}]\n"
	for _, tc := range []struct {
		name     string
		doc      string
		ns       nsview.Namespace
		state    *istio.State
		wantRev  string // label istio.io/rev written; "" none
		wantOpt  bool   // opt-in label written
		dropsInj bool   // istio-injection removed
	}{
		{name: "opted in while the router was down", doc: nsPolicy, state: state("stable", "canary"),
			ns: nsview.Namespace{Name: "shop", ResourceVersion: "7", Labels: map[string]string{"canary-router.io/injection": "enabled"}}, wantRev: "stable"},
		{name: "istio-injection never converted", doc: nsPolicy, state: state("stable", "canary"),
			ns: nsview.Namespace{Name: "shop", ResourceVersion: "7", Labels: map[string]string{"istio-injection": "enabled"}}, wantRev: "stable", dropsInj: true},
		{name: "istio-injection never converted, workload granularity", doc: wlPolicy, state: state("stable"),
			ns: nsview.Namespace{Name: "shop", ResourceVersion: "7", Labels: map[string]string{"istio-injection": "enabled"}}, wantOpt: true, dropsInj: true},
		{name: "routed namespace left alone", doc: nsPolicy, state: state("stable", "canary"),
			ns: nsview.Namespace{Name: "shop", ResourceVersion: "7", Labels: map[string]string{"istio.io/rev": "stable"},
				Annotations: map[string]string{"canary-router.io/decision": `{"revision":"stable","reason":"sticky"}`}}},
		{name: "router's revision just died: nothing moves before namespaceFailover.after", doc: nsPolicy, state: state("canary"),
			ns: nsview.Namespace{Name: "shop", ResourceVersion: "7", Labels: map[string]string{"istio.io/rev": "stable"},
				Annotations: map[string]string{"canary-router.io/decision": `{"revision":"stable","reason":"sticky"}`}}},
		{name: "no Istio view yet: nothing written", doc: nsPolicy, state: nil,
			ns: nsview.Namespace{Name: "shop", ResourceVersion: "7", Labels: map[string]string{"canary-router.io/injection": "enabled"}}},
		{name: "own namespace", doc: nsPolicy, state: state("stable"),
			ns: nsview.Namespace{Name: "canary-router-system", ResourceVersion: "7", Labels: map[string]string{"canary-router.io/injection": "enabled"}}},
		{name: "terminating", doc: nsPolicy, state: state("stable"),
			ns: nsview.Namespace{Name: "shop", Deleting: true, Labels: map[string]string{"canary-router.io/injection": "enabled"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			snap := snapshot(t, tc.doc)
			p := &recordingPatcher{patches: map[string][]byte{}}
			r := NewNamespaceReconciler(NamespaceOptions{
				Namespaces: fakeNamespaces{tc.ns.Name: tc.ns}, Patcher: p, OwnNamespace: "canary-router-system",
				Policy: func() *inforce.Snapshot { return snap }, Istio: func() *istio.State { return tc.state }, Log: zap.NewNop(),
			})
			if _, err := r.reconcile(context.Background(), tc.ns.Name, nil); err != nil {
				t.Fatal(err)
			}
			raw, wrote := p.patches[tc.ns.Name]
			if want := tc.wantRev != "" || tc.wantOpt; wrote != want {
				t.Fatalf("patched %v (%s), want %v", wrote, raw, want)
			}
			if !wrote {
				return
			}
			var pv patchView
			if err := json.Unmarshal(raw, &pv); err != nil {
				t.Fatal(err)
			}
			md := pv.Metadata
			if md.ResourceVersion != tc.ns.ResourceVersion {
				t.Errorf("patch not conditional on resourceVersion %q: %s", tc.ns.ResourceVersion, raw)
			}
			if got := md.Labels["istio.io/rev"]; tc.wantRev != "" && (got == nil || *got != tc.wantRev) {
				t.Errorf("istio.io/rev in %s, want %q", raw, tc.wantRev)
			}
			if got := md.Labels["canary-router.io/injection"]; tc.wantOpt && (got == nil || *got != "enabled") {
				t.Errorf("opt-in label in %s", raw)
			}
			if v, ok := md.Labels["istio-injection"]; tc.dropsInj != (ok && v == nil) {
				t.Errorf("istio-injection removal in %s, want %v", raw, tc.dropsInj)
			}
			var d struct{ Revision, Reason string }
			if err := json.Unmarshal([]byte(md.Annotations["canary-router.io/decision"]), &d); err != nil || d.Revision != tc.wantRev {
				t.Errorf("decision annotation in %s (%v)", raw, err)
			}
		})
	}
}

func TestNamespaceReconcileRetriesAFailedPatch(t *testing.T) {
	snap := snapshot(t, "granularity: namespace\ntargets: [{revision: stable, weight: 100}]\n")
	p := &recordingPatcher{patches: map[string][]byte{}, fail: errors.New("conflict")}
	r := NewNamespaceReconciler(NamespaceOptions{
		Namespaces: fakeNamespaces{"shop": {Name: "shop", Labels: map[string]string{"canary-router.io/injection": "enabled"}}},
		Patcher:    p, Policy: func() *inforce.Snapshot { return snap }, Istio: func() *istio.State { return state("stable") },
		Poll: 10 * time.Millisecond, Log: zap.NewNop(),
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx, nil)
	deadline := time.Now().Add(5 * time.Second)
	requeues := func() int {
		if q := r.queue.Load(); q != nil {
			return (*q).NumRequeues("shop")
		}
		return 0
	}
	for requeues() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("a failed patch was not retried: %d requeues", requeues())
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.mu.Lock()
	p.fail = nil
	p.mu.Unlock()
	for {
		p.mu.Lock()
		_, done := p.patches["shop"]
		p.mu.Unlock()
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("namespace never patched after the error cleared")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestNamespaceReconcilerEndsWithItsTerm: Run returns once its context
// ends, even with nothing queued. The leader waits for a term's
// controllers before campaigning again, so a Run that stayed in the
// queue's Get kept a once-deposed replica from ever leading again.
func TestNamespaceReconcilerEndsWithItsTerm(t *testing.T) {
	snap := snapshot(t, "granularity: namespace\ntargets: [{revision: stable, weight: 100}]\n")
	r := NewNamespaceReconciler(NamespaceOptions{
		Namespaces: fakeNamespaces{}, Patcher: &recordingPatcher{patches: map[string][]byte{}},
		Policy: func() *inforce.Snapshot { return snap }, Istio: func() *istio.State { return state("stable") },
		Poll: 10 * time.Millisecond, Log: zap.NewNop(),
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		r.Run(ctx, nil)
		close(done)
	}()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return within 5s of its context ending")
	}
}

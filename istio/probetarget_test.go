package istio

import (
	"context"
	"strings"
	"testing"
	"time"

	kubefake "k8s.io/client-go/kubernetes/fake"
)

func TestProbeTargets(t *testing.T) {
	hook := func(name string, c ClientConfig) Webhook { return Webhook{Name: name, Client: c} }
	svc := &ServiceRef{Namespace: "istio-system", Name: "istiod-1-25", Path: "/inject/cluster/c1/net/n1", Port: 443}
	configs := []Config{
		{Name: "istio-sidecar-injector-1-24", Rev: "1-24", Webhooks: []Webhook{
			hook("rev.namespace.sidecar-injector.istio.io", ClientConfig{URL: "https://istiod.example:15017/inject", CABundle: []byte("ca-24")}),
			hook("rev.object.sidecar-injector.istio.io", ClientConfig{URL: "https://elsewhere.example/inject"}),
		}},
		{Name: "istio-sidecar-injector-1-25", Rev: "1-25", Webhooks: []Webhook{hook("rev.namespace.sidecar-injector.istio.io", ClientConfig{Service: svc})}},
		// A tag's config is not checked on its own, even with another address.
		{Name: "istio-revision-tag-prod", Rev: "1-26", Tag: "prod", Webhooks: []Webhook{hook("rev.namespace.sidecar-injector.istio.io", ClientConfig{URL: "https://tag.example"})}},
		// A second config for 1-24 sorts after the first: not the one checked.
		{Name: "zz-istio-1-24", Rev: "1-24", Webhooks: []Webhook{hook("x", ClientConfig{URL: "https://zz.example"})}},
		// Metadata only: nothing to check.
		{Name: "istio-sidecar-injector-1-27", Rev: "1-27"},
	}
	got := NewState(configs, nil, "istio-system", "canary-router").ProbeTargets()
	want := map[string]ProbeTarget{
		"1-24": {Revision: "1-24", Config: "istio-sidecar-injector-1-24", Webhook: "rev.namespace.sidecar-injector.istio.io",
			URL: "https://istiod.example:15017/inject", CABundle: []byte("ca-24")},
		"1-25": {Revision: "1-25", Config: "istio-sidecar-injector-1-25", Webhook: "rev.namespace.sidecar-injector.istio.io",
			URL: "https://istiod-1-25.istio-system.svc:443/inject/cluster/c1/net/n1"},
	}
	if len(got) != len(want) {
		t.Fatalf("targets %+v, want %+v", got, want)
	}
	for rev, w := range want {
		if !sameProbeTarget(got[rev], w) {
			t.Errorf("%s: %+v, want %+v", rev, got[rev], w)
		}
	}
}

func TestNotAnswering(t *testing.T) {
	configs := append(istioConfigs[:len(istioConfigs):len(istioConfigs)], Config{Name: "istio-sidecar-injector-1-26", Rev: "1-26"})
	eps := []Endpoints{{Service: "istiod-1-24", Ready: true}, {Service: "istiod-1-25", Ready: true}}
	base := NewState(configs, eps, "istio-system", "canary-router")
	why := "the injector webhook of revision 1-25 (...) failed 2 checks in a row (last: EOF)"
	s := base.WithNotAnswering(map[string]string{"1-25": why, "1-26": "also silent"})
	tests := []struct {
		target string
		want   Status
		detail string
	}{
		{target: "1-24", want: Status{Revision: "1-24"}},
		{target: "1-25", want: Status{Revision: "1-25", Cause: CauseNotAnswering, Detail: why}},
		{target: "prod", want: Status{Revision: "1-25", Tag: true, Cause: CauseNotAnswering,
			Detail: "revision tag prod points to revision 1-25, and " + why}},
		// Not-ready is the cluster's own account and goes first.
		{target: "1-26", want: Status{Revision: "1-26", Cause: CauseNotReady}, detail: "istiod-1-26 in istio-system has no ready endpoints"},
	}
	for _, tt := range tests {
		got := s.Target(tt.target)
		if tt.detail != "" {
			if !strings.Contains(got.Detail, tt.detail) {
				t.Errorf("%s: detail %q, want %q", tt.target, got.Detail, tt.detail)
			}
			got.Detail = ""
		}
		if got != tt.want {
			t.Errorf("%s: %+v, want %+v", tt.target, got, tt.want)
		}
	}
	if s.RevisionLive("1-25") || !s.RevisionLive("1-24") {
		t.Errorf("RevisionLive: 1-25 %v, 1-24 %v; want false, true", s.RevisionLive("1-25"), s.RevisionLive("1-24"))
	}
	if !base.Target("1-25").Available() || len(base.NotAnswering()) != 0 {
		t.Error("WithNotAnswering changed the State it was called on")
	}
	if base.equal(s) || !s.equal(base.WithNotAnswering(map[string]string{"1-25": why, "1-26": "also silent"})) {
		t.Error("equal does not account for the active check's verdict")
	}
}

func TestWatcherTakesTheProbeVerdict(t *testing.T) {
	kube := kubefake.NewClientset(slice("istiod-stable", ptr(true)), mwc("istio-sidecar-injector-stable", map[string]string{LabelRev: "stable"}))
	changes := make(chan *State, 16)
	w := NewWatcher(WatcherOptions{Client: kube, Namespace: "istio-system", OwnConfig: "canary-router",
		OnChange: func(_, next *State) { changes <- next }})
	// A verdict that arrives before the first lists is kept for them.
	w.SetNotAnswering(map[string]string{"stable": "silent"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Run(ctx)
	next := func() *State {
		t.Helper()
		select {
		case s := <-changes:
			return s
		case <-time.After(10 * time.Second):
			t.Fatal("no new State")
			return nil
		}
	}
	if st := next().Target("stable"); st.Cause != CauseNotAnswering || st.Detail != "silent" {
		t.Errorf("stable = %+v, want not-answering", st)
	}
	if got := w.Current().ProbeTargets()["stable"].URL; got != "https://istiod.example/inject" {
		t.Errorf("probe target %q", got)
	}
	w.SetNotAnswering(map[string]string{})
	if st := next().Target("stable"); !st.Available() {
		t.Errorf("stable = %+v after the injector answered again", st)
	}
	// The same verdict again publishes nothing.
	w.SetNotAnswering(nil)
	select {
	case s := <-changes:
		t.Errorf("an unchanged verdict published a State: %+v", s)
	case <-time.After(200 * time.Millisecond):
	}
}

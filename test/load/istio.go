package main

import (
	"context"
	"sync"

	"k8s.io/client-go/kubernetes"

	"github.com/canary-router/canary-router/test/cluster"
	"github.com/canary-router/canary-router/test/fakeistio"
)

// injectors is the stand-in Istio injector server of this process, shared
// by every control plane it starts; it lives as long as the process.
var injectors struct {
	once sync.Once
	in   *fakeistio.Injectors
	err  error
}

// registerIstio makes each revision look installed and healthy to the
// router: Istio's injector config per revision, with the exact selectors
// Istio's charts render and a stand-in injector behind it (the router
// refuses a pod no live injector would match, and probes each injector),
// and a ready istiod. In the pod-creation measurement the apiserver calls
// the injector for the router's pods and the floor's alike (the floor's
// canned patch sets istio.io/rev too), so the two still differ only by
// the webhook under test; the no-webhook namespace has none.
func registerIstio(ctx context.Context, c kubernetes.Interface, revisions ...string) error {
	injectors.once.Do(func() {
		ca, err := cluster.NewCA("canary-router-load istiod")
		if err != nil {
			injectors.err = err
			return
		}
		injectors.in, injectors.err = fakeistio.Start(ca)
	})
	if injectors.err != nil {
		return injectors.err
	}
	return injectors.in.Install(ctx, c, "", revisions...)
}

package istio

import (
	"context"
	"fmt"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Read reads Istio's control planes once, without informers, as the
// Watcher does: revisions and tags from the MutatingWebhookConfigurations'
// labels, istiod health from the EndpointSlices in istioNamespace. The
// CLI's one-shot commands (init, migrate, uninstall) use it; ownWebhook is
// the router's own webhook configuration, never taken for Istio's.
// EndpointSlices the caller may not read only leave health unknown
// (returned as a warning).
func Read(ctx context.Context, client kubernetes.Interface, istioNamespace, ownWebhook string) (*State, string, error) {
	mwcs, err := client.AdmissionregistrationV1().MutatingWebhookConfigurations().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, "", fmt.Errorf("listing MutatingWebhookConfigurations (Istio's revisions and tags): %w", err)
	}
	var configs []Config
	for _, m := range mwcs.Items {
		configs = append(configs, Config{Name: m.Name, Rev: m.Labels[LabelRev], Tag: m.Labels[LabelTag]})
	}
	var eps []Endpoints
	var warn string
	slices, err := client.DiscoveryV1().EndpointSlices(istioNamespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		warn = "cannot read istiod health (EndpointSlices in " + istioNamespace + "): " + err.Error()
	} else {
		for _, s := range slices.Items {
			eps = append(eps, Endpoints{Service: s.Labels[discoveryv1.LabelServiceName], Ready: anyReady(s.Endpoints)})
		}
	}
	return NewState(configs, eps, istioNamespace, ownWebhook), warn, nil
}

// anyReady reports whether some endpoint is ready; a nil condition counts
// as ready, as the EndpointSlice API defines it.
func anyReady(eps []discoveryv1.Endpoint) bool {
	for _, e := range eps {
		if e.Conditions.Ready == nil || *e.Conditions.Ready {
			return true
		}
	}
	return false
}

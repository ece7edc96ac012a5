package serve

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/pflag"
	"go.uber.org/zap"
	"k8s.io/client-go/metadata"

	"github.com/canary-router/canary-router/cmd/canary-router/cmdutil"
	"github.com/canary-router/canary-router/istio"
	"github.com/canary-router/canary-router/view/podview"
	"github.com/canary-router/canary-router/webhook"
)

// clusterConfig holds the flags of the router's live view of the cluster.
type clusterConfig struct {
	istioNamespace string
	probe          probeConfig
}

func (c *clusterConfig) Bind(fs *pflag.FlagSet) {
	fs.StringVar(&c.istioNamespace, "istio-namespace", "istio-system", "namespace of the istiod Services whose EndpointSlices say whether a revision is healthy")
	c.probe.Bind(fs)
}

// clusterState is the router's live view of the cluster: Istio's revisions
// and tags, istiod health and the webhook order (which gate every write),
// and the pods that per-pod routing balances against.
type clusterState struct {
	istio  *istio.Watcher
	pods   *podview.View
	checks map[string]webhook.Check
}

// startClusterState starts the informers behind the view; they run until
// ctx ends. ownConfig is the router's MutatingWebhookConfiguration name.
//
// Readiness waits for the Istio view without limit: until it has listed
// the webhook configs and istiod EndpointSlices, the router cannot tell a
// live target from a typo and would have to refuse every pod anyway. It
// waits for the pod view only for a grace period (podview.DefaultSyncGrace).
// A misordered webhook config is reported in /readyz but does not fail it:
// taking every replica out of service would refuse every pod in the
// managed namespaces, which is worse than the misordering.
func startClusterState(ctx context.Context, cfg clusterConfig, kube *cmdutil.KubeClients, ownConfig string, metrics *webhook.Metrics, log *zap.Logger) (*clusterState, error) {
	if kube == nil {
		return nil, errors.New("canary-router needs API access to check Istio's revisions and istiod health: set --kubeconfig or run in a cluster")
	}
	meta, err := metadata.NewForConfig(kube.Config)
	if err != nil {
		return nil, fmt.Errorf("metadata client: %w", err)
	}
	w := istio.NewWatcher(istio.WatcherOptions{
		Client:    kube.Client,
		Namespace: cfg.istioNamespace,
		OwnConfig: ownConfig,
		Log:       log.Named("istio"),
		OnChange:  func(_, next *istio.State) { metrics.SetWebhookOrderViolations(len(next.Misordered())) },
	})
	if err := startInjectorProbe(ctx, cfg.probe, w, metrics, log.Named("istio")); err != nil {
		return nil, err
	}
	go w.Run(ctx)
	pods := podview.New(podview.Options{Log: log.Named("podview")})
	go pods.Run(ctx, meta)
	go releaseAfterSync(ctx, pods.Synced, log.Named("podview"))
	return &clusterState{istio: w, pods: pods, checks: map[string]webhook.Check{
		"istio":         w.Ready,
		"pod-view":      pods.Ready,
		"webhook-order": func() error { return webhookOrder(w.Current()) },
	}}, nil
}

// webhookOrder is the /readyz advisory for a misordered webhook config.
func webhookOrder(s *istio.State) error {
	if s == nil {
		return nil
	}
	if p := s.OrderProblem(); p != "" {
		return webhook.Advisory(errors.New(p))
	}
	return nil
}

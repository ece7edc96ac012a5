package serve

import (
	"context"
	"errors"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"

	"github.com/canary-router/canary-router/cmd/canary-router/cmdutil"
	"github.com/canary-router/canary-router/controller/migrate"
	"github.com/canary-router/canary-router/policy/inforce"
	"github.com/canary-router/canary-router/webhook"
)

// startPolicySource feeds the store: a file read once (local runs), or the
// policy ConfigMap watched for the life of ctx. It returns the readiness
// check for the source.
func startPolicySource(ctx context.Context, cfg Options, store *inforce.Store, kube *cmdutil.KubeClients, log *zap.Logger) webhook.Check {
	if cfg.policyFile != "" {
		// A missing or invalid policy does not stop the router: it stays
		// up, admits namespaces unchanged and refuses pods that would need
		// routing, with a message naming the cause (README, failure modes).
		_, _ = store.ApplyFile(cfg.policyFile)
		return func() error { return nil }
	}
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: kube.Client.CoreV1().Events(cfg.namespace)})
	recorder := broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "canary-router"})
	w := webhook.NewPolicyWatcher(kube.Client, store, cfg.namespace, cfg.policyConfigMap, recorder, log)
	go func() {
		w.Run(ctx)
		broadcaster.Shutdown()
	}()
	// Every replica routes by a rollout's weights in force, which the
	// leader keeps in the status object; ready only once they are read,
	// so a new replica never routes mid-rollout by the policy's weights.
	ow := webhook.NewOverlayWatcher(kube.Client, store, cfg.namespace, migrate.StatusConfigMap, log)
	go ow.Run(ctx)
	return func() error {
		if err := w.Synced(); err != nil {
			return err
		}
		if !ow.HasSynced() {
			return errors.New("status object (rollout weights) not read yet")
		}
		return nil
	}
}

package serve

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/canary-router/canary-router/cmd/canary-router/cmdutil"
	"github.com/canary-router/canary-router/controller"
	"github.com/canary-router/canary-router/controller/rollout"
	"github.com/canary-router/canary-router/istio"
	"github.com/canary-router/canary-router/policy/inforce"
)

// rolloutLeader runs the self-driving rollout while this replica leads,
// next to the migration it drives through the status object. Its pod
// health informer starts only once the policy holds a rollout block, so a
// router that never rolls out never lists full pods.
type rolloutLeader struct {
	kube         *cmdutil.KubeClients
	ownNamespace string
	store        *inforce.Store
	state        func() *istio.State
	pods         rollout.PodCounts
	log          *zap.Logger
	// metrics holds the registered metrics across leadership terms; each
	// term runs a controller of its own made from it (With).
	metrics *rollout.Controller
	// promAllowed is serve --prometheus-allowed-url.
	promAllowed []string
}

func newRolloutLeader(kube *cmdutil.KubeClients, ownNamespace string, store *inforce.Store, state func() *istio.State,
	pods rollout.PodCounts, reg prometheus.Registerer, log *zap.Logger) *rolloutLeader {
	// The controller is built now, not with the first plan, so its
	// metrics (step 0, every phase 0) exist on every replica from the
	// start: dashboards and alerts see zeros, not gaps.
	return &rolloutLeader{kube: kube, ownNamespace: ownNamespace, store: store, state: state, pods: pods, log: log,
		metrics: rollout.New(rollout.Options{Registerer: reg, Log: log})}
}

// Run walks the rollout until ctx ends (leadership lost or shutdown);
// every write goes through term.
func (r *rolloutLeader) Run(ctx context.Context, term *controller.Term) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for !r.planned() {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	defer broadcaster.Shutdown()
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: r.kube.Client.CoreV1().Events(r.ownNamespace)})
	health := rollout.NewHealthInformer(r.kube.Client)
	go health.Run(ctx)
	if !cache.WaitForCacheSync(ctx.Done(), health.HasSynced) {
		return
	}
	o := rollout.Options{Base: r.store.Base, Effective: r.store.Load, Istio: r.state, Pods: r.pods, Health: health,
		// The plan's timeout bounds each query; this bounds a hung connection.
		Querier: &rollout.HTTPQuerier{Client: &http.Client{Timeout: time.Minute}}, PrometheusAllowed: r.promAllowed,
		Status: &rollout.KubeStatus{Client: r.kube.Client, Namespace: r.ownNamespace,
			Recorder: broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "canary-router"}), Term: term},
		Log: r.log}
	ctl := r.metrics.With(o)
	r.log.Info("rollout controller started")
	ctl.Run(ctx)
}

func (r *rolloutLeader) planned() bool {
	s := r.store.Base()
	// A completed rollout whose block was removed still routes by its
	// weights until the targets agree: the controller must run to see that.
	return s != nil && s.Policy.Rollout != nil || r.store.Load() != nil && r.store.Load().Rollout != nil
}

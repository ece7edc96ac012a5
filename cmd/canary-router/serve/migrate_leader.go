package serve

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/flowcontrol"

	"github.com/canary-router/canary-router/cmd/canary-router/cmdutil"
	"github.com/canary-router/canary-router/controller"
	"github.com/canary-router/canary-router/controller/migrate"
	"github.com/canary-router/canary-router/istio"
	"github.com/canary-router/canary-router/policy/inforce"
	"github.com/canary-router/canary-router/view/nsview"
	"github.com/canary-router/canary-router/view/podview"
)

// defaultMigrationWriteQPS paces the leader's restarts and relabels
// (serve --migration-write-qps): a batch of a few workloads goes out at
// once, a burst of hundreds does not.
const defaultMigrationWriteQPS = 5

// migrationLeader runs the in-cluster migration while this replica leads.
// Its informers (workloads, pod metadata) start with each term and stop
// with it, so replicas that only serve admissions never hold them.
type migrationLeader struct {
	kube         *cmdutil.KubeClients
	ownNamespace string
	store        *inforce.Store
	state        func() *istio.State
	namespaces   *nsview.View
	// pods is the replica's pod view: the leader plans from it rather
	// than from a pod informer of its own.
	pods *podview.View
	log  *zap.Logger
	qps  float64
	// metrics holds the registered metrics across leadership terms; each
	// term runs a controller of its own made from it (With), so nothing
	// is swapped while an old term may still run.
	metrics *migrate.Controller
}

func newMigrationLeader(kube *cmdutil.KubeClients, ownNamespace string, store *inforce.Store, state func() *istio.State,
	namespaces *nsview.View, pods *podview.View, qps float64, reg prometheus.Registerer, log *zap.Logger) *migrationLeader {
	return &migrationLeader{kube: kube, ownNamespace: ownNamespace, store: store, state: state, namespaces: namespaces, pods: pods, qps: qps, log: log,
		metrics: migrate.New(migrate.Options{Registerer: reg, Log: log})}
}

// Run migrates until ctx ends (leadership lost or shutdown); every write
// goes through term.
func (m *migrationLeader) Run(ctx context.Context, term *controller.Term) {
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	defer broadcaster.Shutdown()
	// Events go to each workload's own namespace.
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: m.kube.Client.CoreV1().Events("")})
	pods := migrate.ViewPods{View: m.pods}
	workloads := migrate.NewWorkloadInformers(m.kube.Client)
	dyn := migrate.RolloutsClient(m.kube.Client.Discovery(), m.kube.Config, m.log)
	if dyn != nil {
		workloads.WithRollouts(dyn)
	}
	o := migrate.Options{
		Policy: m.store.Load, Istio: m.state, Namespaces: migrate.NamespacesOf(m.namespaces, m.ownNamespace),
		Workloads: workloads, Pods: pods, Log: m.log,
		Writer: &migrate.KubeWriter{Client: m.kube.Client, Namespace: m.ownNamespace,
			Recorder: broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "canary-router"}),
			Limiter:  flowcontrol.NewTokenBucketRateLimiter(float32(m.qps), max(1, int(2*m.qps))), Dynamic: dyn, Term: term},
	}
	ctl := m.metrics.With(o)
	defer m.pods.Notify(ctl.Enqueue)()
	workloads.AddEventHandler(ctl.Handler())
	workloads.Run(ctx)
	if !cache.WaitForCacheSync(ctx.Done(), pods.HasSynced, workloads.HasSynced) {
		return
	}
	m.log.Info("migration controller started")
	// The first lists of workloads are garbage now, as the pod view's was.
	releaseMemory(m.log)
	ctl.Run(ctx)
}

// leaderControllers runs every controller of a leadership term and
// returns when all of them have.
func leaderControllers(runs ...func(context.Context, *controller.Term)) func(context.Context, *controller.Term) {
	return func(ctx context.Context, term *controller.Term) {
		done := make(chan struct{}, len(runs))
		for _, run := range runs {
			go func() {
				defer func() { done <- struct{}{} }()
				run(ctx, term)
			}()
		}
		for range runs {
			<-done
		}
	}
}

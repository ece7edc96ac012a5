package serve

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"

	"github.com/canary-router/canary-router/cmd/canary-router/cmdutil"
	"github.com/canary-router/canary-router/controller"
	"github.com/canary-router/canary-router/istio"
	"github.com/canary-router/canary-router/policy/inforce"
	"github.com/canary-router/canary-router/view/nsview"
	"github.com/canary-router/canary-router/view/podview"
)

// leaseName is the Lease the router's replicas elect a leader on; only the
// leader runs the controllers that write.
const leaseName = "canary-router-leader"

// startNamespaces starts the namespace view every replica reads (the pod
// webhook's injection check) and, on the elected leader only, the
// reconciler that writes namespaces the namespace webhook missed. stopped
// waits, up to a bound, until leadership is released after ctx ends, so
// the next replica (or a restart) takes over at once instead of waiting
// for the Lease to expire.
func startNamespaces(ctx context.Context, kube *cmdutil.KubeClients, ownNamespace string, store *inforce.Store,
	state func() *istio.State, pods *podview.View, migrationQPS float64, promAllowed []string, reg prometheus.Registerer, log *zap.Logger) (view *nsview.View, stopped func(), err error) {
	meta, err := metadata.NewForConfig(kube.Config)
	if err != nil {
		return nil, nil, fmt.Errorf("metadata client: %w", err)
	}
	view = nsview.New(meta)
	rec := controller.NewNamespaceReconciler(controller.NamespaceOptions{
		Namespaces:   view,
		Patcher:      namespacePatcher{kube.Client},
		Policy:       store.Load,
		Istio:        state,
		OwnNamespace: ownNamespace,
		Registerer:   reg,
		Log:          log.Named("namespaces"),
	})
	view.OnChange(rec.Enqueue)
	mig := newMigrationLeader(kube, ownNamespace, store, state, view, pods, migrationQPS, reg, log.Named("migration"))
	ro := newRolloutLeader(kube, ownNamespace, store, state, pods, reg, log.Named("rollout"))
	ro.promAllowed = promAllowed
	go view.Run(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		controller.RunAsLeader(ctx, controller.LeaderOptions{
			Client:    kube.Client,
			Namespace: ownNamespace,
			Name:      leaseName,
			Identity:  replicaIdentity(),
			Log:       log.Named("leader"),
			OnLeading: leaderControllers(rec.Run, mig.Run, ro.Run),
		})
	}()
	stopped = func() {
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			log.Warn("leader Lease not released within 5s; the next leader waits for it to expire")
		}
	}
	return view, stopped, nil
}

// replicaIdentity names this replica in the Lease: its pod name (the
// manifests set POD_NAME), else the host name, made unique either way so
// two local runs never both believe they lead.
func replicaIdentity() string {
	id := os.Getenv("POD_NAME")
	if id == "" {
		id, _ = os.Hostname()
	}
	return id + "_" + rand.String(5)
}

// namespacePatcher writes merge patches to namespaces.
type namespacePatcher struct{ client kubernetes.Interface }

var _ controller.NamespacePatcher = namespacePatcher{}

func (p namespacePatcher) PatchNamespace(ctx context.Context, name string, patch []byte) error {
	_, err := p.client.CoreV1().Namespaces().Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "canary-router"})
	return err
}

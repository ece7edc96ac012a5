package rollout

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"

	"github.com/canary-router/canary-router/controller"
	"github.com/canary-router/canary-router/controller/migrate"
)

// KubeStatus is StatusIO on the status object through a clientset. It
// reads with a GET, not an informer, so a pass always sees its own last
// write (a stale cache would replay a transition and its Event).
type KubeStatus struct {
	Client kubernetes.Interface
	// Namespace holds the status object (the router's own).
	Namespace string
	Recorder  record.EventRecorder
	// Term fences the writes to the leader's term (migrate.FencedStatus);
	// nil writes unfenced.
	Term *controller.Term

	status *migrate.FencedStatus
}

var _ StatusIO = (*KubeStatus)(nil)

// Load implements StatusIO.
func (k *KubeStatus) Load(ctx context.Context) (map[string]string, error) {
	o := k.object()
	data, err := o.Load(ctx)
	if err == nil && !o.Found() {
		// nil, not empty: the rollout controller tells a deleted status
		// object from one that lost its rollout keys.
		return nil, nil
	}
	return data, err
}

// Save implements StatusIO: a merge patch of the keys given, so the
// leader's progress, the migration's and an operator's command never
// overwrite each other.
func (k *KubeStatus) Save(ctx context.Context, data map[string]string) error {
	return k.object().Save(ctx, data)
}

func (k *KubeStatus) object() *migrate.FencedStatus {
	if k.status == nil {
		k.status = &migrate.FencedStatus{Client: k.Client, Namespace: k.Namespace, Term: k.Term}
	}
	return k.status
}

// Event implements StatusIO: Events go on the status object, where
// `kubectl describe` and `canary-router rollout status` find them.
func (k *KubeStatus) Event(warning bool, reason, message string) {
	if k.Recorder == nil {
		return
	}
	typ := corev1.EventTypeNormal
	if warning {
		typ = corev1.EventTypeWarning
	}
	k.Recorder.Event(&corev1.ObjectReference{APIVersion: "v1", Kind: "ConfigMap", Namespace: k.Namespace, Name: migrate.StatusConfigMap},
		typ, reason, message)
}

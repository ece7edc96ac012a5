package migrate

import (
	"context"
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/flowcontrol"

	"github.com/canary-router/canary-router/controller"
	"github.com/canary-router/canary-router/policy"
)

// Writer is the controller's I/O seam: every write it makes.
type Writer interface {
	// Restart restarts a workload the way `kubectl rollout restart` does
	// and marks it restarted for digest, in one idempotent patch. A
	// non-empty resourceVersion (the workload as the pass saw it) makes
	// the patch conditional: a workload changed since is not written.
	Restart(ctx context.Context, r Ref, resourceVersion, digest, restartedAt string) error
	// Relabel sets a namespace's istio.io/rev and the router's decision
	// annotation, conditional on resourceVersion when it is set.
	Relabel(ctx context.Context, name, resourceVersion, revision, decision string) error
	// LoadStatus reads the status object's data (empty when absent).
	LoadStatus(ctx context.Context) (map[string]string, error)
	// SaveStatus merges keys into the status object's data, conditional
	// on the object being as the last LoadStatus read it when the writer
	// is fenced.
	SaveStatus(ctx context.Context, data map[string]string) error
	// Event records an Event on a workload.
	Event(r Ref, warning bool, reason, message string)
}

// KubeWriter writes through a clientset, at most QPS writes a second.
type KubeWriter struct {
	Client kubernetes.Interface
	// Namespace holds the status object.
	Namespace string
	Recorder  record.EventRecorder
	// Limiter paces restarts and relabels (a flag sets its rate).
	Limiter flowcontrol.RateLimiter
	// Dynamic restarts Argo Rollouts; nil when the CRD is not installed.
	Dynamic dynamic.Interface
	// Term fences every write to the leader's term: checked before each
	// one, and recorded in the status object. nil (the CLI's --apply)
	// writes unfenced.
	Term *controller.Term

	status *FencedStatus
}

var _ Writer = (*KubeWriter)(nil)

const fieldManager = "canary-router-migrate"

// restartPatch is a JSON merge patch, the same on every repeat. With a
// resourceVersion the API server applies it only to that version of the
// object (409 Conflict otherwise), so a leader that woke from a freeze
// cannot restart a workload the next leader already changed.
func restartPatch(resourceVersion, digest, restartedAt string) []byte {
	meta := map[string]any{"annotations": map[string]string{AnnotationMigrated: digest}}
	if resourceVersion != "" {
		meta["resourceVersion"] = resourceVersion
	}
	b, _ := json.Marshal(map[string]any{
		"metadata": meta,
		"spec": map[string]any{"template": map[string]any{"metadata": map[string]any{
			"annotations": map[string]string{AnnotationRestartedAt: restartedAt}}}},
	})
	return b
}

// Restart implements Writer.
func (w *KubeWriter) Restart(ctx context.Context, r Ref, resourceVersion, digest, restartedAt string) error {
	if err := w.wait(ctx); err != nil {
		return err
	}
	if err := w.check(); err != nil {
		return err
	}
	patch, opts := restartPatch(resourceVersion, digest, restartedAt), metav1.PatchOptions{FieldManager: fieldManager}
	var err error
	switch r.Kind {
	case KindDeployment:
		_, err = w.Client.AppsV1().Deployments(r.Namespace).Patch(ctx, r.Name, types.MergePatchType, patch, opts)
	case KindStatefulSet:
		_, err = w.Client.AppsV1().StatefulSets(r.Namespace).Patch(ctx, r.Name, types.MergePatchType, patch, opts)
	case KindDaemonSet:
		_, err = w.Client.AppsV1().DaemonSets(r.Namespace).Patch(ctx, r.Name, types.MergePatchType, patch, opts)
	case KindRollout:
		if w.Dynamic == nil {
			return fmt.Errorf("%s: Argo Rollouts is not installed", r)
		}
		err = patchRollout(ctx, w.Dynamic, r, resourceVersion, digest, restartedAt, fieldManager)
	default:
		return fmt.Errorf("%s: kind %s is not restarted", r, r.Kind)
	}
	if apierrors.IsNotFound(err) {
		return nil // deleted meanwhile: nothing left to move
	}
	return err
}

// Relabel implements Writer.
func (w *KubeWriter) Relabel(ctx context.Context, name, resourceVersion, revision, decision string) error {
	if err := w.wait(ctx); err != nil {
		return err
	}
	if err := w.check(); err != nil {
		return err
	}
	meta := map[string]any{
		"labels":      map[string]string{policy.LabelIstioRev: revision},
		"annotations": map[string]string{policy.AnnotationDecision: decision},
	}
	if resourceVersion != "" {
		meta["resourceVersion"] = resourceVersion
	}
	patch, _ := json.Marshal(map[string]any{"metadata": meta})
	_, err := w.Client.CoreV1().Namespaces().Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: fieldManager})
	return err
}

// LoadStatus implements Writer.
func (w *KubeWriter) LoadStatus(ctx context.Context) (map[string]string, error) {
	return w.statusObject().Load(ctx)
}

// SaveStatus implements Writer: a merge patch of the keys given, so the
// leader's progress and an operator's pause never overwrite each other
// (an operator's write in between makes it a conflict, retried).
func (w *KubeWriter) SaveStatus(ctx context.Context, data map[string]string) error {
	return w.statusObject().Save(ctx, data)
}

func (w *KubeWriter) statusObject() *FencedStatus {
	if w.status == nil {
		w.status = &FencedStatus{Client: w.Client, Namespace: w.Namespace, Term: w.Term}
	}
	return w.status
}

// check refuses a write once the leader's term is over.
func (w *KubeWriter) check() error {
	if w.Term == nil {
		return nil
	}
	return w.Term.Check()
}

// SaveStatusData merges keys into the status object, creating it when
// absent; the CLI's pause and resume use it too.
func SaveStatusData(ctx context.Context, client kubernetes.Interface, namespace string, data map[string]string) error {
	cms := client.CoreV1().ConfigMaps(namespace)
	patch, _ := json.Marshal(map[string]any{"data": data})
	_, err := cms.Patch(ctx, StatusConfigMap, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: fieldManager})
	if !apierrors.IsNotFound(err) {
		return err
	}
	_, err = cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: StatusConfigMap, Namespace: namespace,
		Labels: map[string]string{"app.kubernetes.io/name": "canary-router"}}, Data: data}, metav1.CreateOptions{FieldManager: fieldManager})
	if apierrors.IsAlreadyExists(err) {
		// Lost a create race with the other writer: patch what is there.
		_, err = cms.Patch(ctx, StatusConfigMap, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: fieldManager})
	}
	return err
}

// Event implements Writer.
func (w *KubeWriter) Event(r Ref, warning bool, reason, message string) {
	if w.Recorder == nil {
		return
	}
	typ := corev1.EventTypeNormal
	if warning {
		typ = corev1.EventTypeWarning
	}
	w.Recorder.Event(&corev1.ObjectReference{APIVersion: "apps/v1", Kind: r.Kind, Namespace: r.Namespace, Name: r.Name}, typ, reason, message)
}

func (w *KubeWriter) wait(ctx context.Context) error {
	if w.Limiter == nil {
		return nil
	}
	return w.Limiter.Wait(ctx)
}

func metav1PatchOptions(field string) metav1.PatchOptions {
	return metav1.PatchOptions{FieldManager: field}
}

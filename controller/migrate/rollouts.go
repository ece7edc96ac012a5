package migrate

import (
	"context"
	"encoding/json"
	"strconv"

	"go.uber.org/zap"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/canary-router/canary-router/policy"
)

// RolloutGVR is Argo Rollouts' Rollout resource.
var RolloutGVR = schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "rollouts"}

// RolloutsClient returns a dynamic client when Argo Rollouts' CRD is
// installed (the leader checks once per term), else nil: Rollouts are
// then neither watched nor restarted.
func RolloutsClient(d discovery.DiscoveryInterface, cfg *rest.Config, log *zap.Logger) dynamic.Interface {
	if !RolloutsInstalled(d) {
		return nil
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		log.Warn("Argo Rollouts installed but no dynamic client; Rollouts are not migrated", zap.Error(err))
		return nil
	}
	log.Info("Argo Rollouts installed: Rollouts migrate through spec.restartAt")
	return dyn
}

// RolloutsInstalled reports whether the cluster serves Argo Rollouts'
// CRD; without it the migration neither watches nor restarts Rollouts.
// Discovery is open to every authenticated identity.
func RolloutsInstalled(d discovery.DiscoveryInterface) bool {
	list, err := d.ServerResourcesForGroupVersion(RolloutGVR.GroupVersion().String())
	if err != nil {
		return false
	}
	for _, r := range list.APIResources {
		if r.Name == RolloutGVR.Resource {
			return true
		}
	}
	return false
}

// FromRollout normalises an Argo Rollout. Argo restarts a Rollout's pods
// in place when spec.restartAt passes (no new ReplicaSet), and records
// status.restartedAt when it is done; until then the Rollout counts as
// not updated, so a batch waits for it.
func FromRollout(u *unstructured.Unstructured) Workload {
	m := u.Object
	tmplLabels, _, _ := unstructured.NestedStringMap(m, "spec", "template", "metadata", "labels")
	tmplAnn, _, _ := unstructured.NestedStringMap(m, "spec", "template", "metadata", "annotations")
	inject := tmplLabels[policy.LabelSidecarInject]
	if inject == "" {
		inject = tmplAnn[policy.LabelSidecarInject]
	}
	_, pinned := tmplLabels[policy.LabelIstioRev]
	w := Workload{
		Ref:        Ref{Namespace: u.GetNamespace(), Kind: KindRollout, Name: u.GetName()},
		Generation: u.GetGeneration(),
		OptOut:     u.GetAnnotations()[AnnotationMigrate] == "false",
		Pinned:     pinned || inject == "false",
		Migrated:   u.GetAnnotations()[AnnotationMigrated],
		Replicas:   1,

		ResourceVersion: u.GetResourceVersion(),
	}
	if r, ok, _ := unstructured.NestedInt64(m, "spec", "replicas"); ok {
		w.Replicas = int32(r)
	}
	w.Paused, _, _ = unstructured.NestedBool(m, "spec", "paused")
	w.StatusReplicas = int32(nestedInt(m, "status", "replicas"))
	w.Updated = int32(nestedInt(m, "status", "updatedReplicas"))
	w.Available = int32(nestedInt(m, "status", "availableReplicas"))
	// Argo writes observedGeneration as a string.
	w.ObservedGeneration = nestedInt(m, "status", "observedGeneration")
	want, _, _ := unstructured.NestedString(m, "spec", "restartAt")
	done, _, _ := unstructured.NestedString(m, "status", "restartedAt")
	if want != "" && done < want {
		w.Updated = 0
	}
	return w
}

// nestedInt reads a number written as a JSON number or a string.
func nestedInt(m map[string]any, fields ...string) int64 {
	v, ok, _ := unstructured.NestedFieldNoCopy(m, fields...)
	if !ok {
		return 0
	}
	switch x := v.(type) {
	case int64:
		return x
	case float64:
		return int64(x)
	case string:
		n, _ := strconv.ParseInt(x, 10, 64)
		return n
	}
	return 0
}

// rolloutRestartPatch is the merge patch that restarts a Rollout the way
// `kubectl argo rollouts restart` does, with the migrated marker.
func rolloutRestartPatch(resourceVersion, digest, restartedAt string) []byte {
	meta := map[string]any{"annotations": map[string]string{AnnotationMigrated: digest}}
	if resourceVersion != "" {
		meta["resourceVersion"] = resourceVersion // as restartPatch
	}
	b, _ := json.Marshal(map[string]any{
		"metadata": meta,
		"spec":     map[string]any{"restartAt": restartedAt},
	})
	return b
}

// patchRollout writes the restart through the dynamic client.
func patchRollout(ctx context.Context, d dynamic.Interface, r Ref, resourceVersion, digest, restartedAt string, field string) error {
	_, err := d.Resource(RolloutGVR).Namespace(r.Namespace).Patch(ctx, r.Name, types.MergePatchType,
		rolloutRestartPatch(resourceVersion, digest, restartedAt), metav1PatchOptions(field))
	return err
}

// rolloutInformer watches Rollouts through the dynamic client.
type rolloutInformer struct{ inf cache.SharedIndexInformer }

func newRolloutInformer(d dynamic.Interface) (*rolloutInformer, dynamicinformer.DynamicSharedInformerFactory) {
	f := dynamicinformer.NewDynamicSharedInformerFactory(d, 0)
	return &rolloutInformer{inf: f.ForResource(RolloutGVR).Informer()}, f
}

func (r *rolloutInformer) list() []Workload {
	var out []Workload
	for _, o := range r.inf.GetStore().List() {
		if u, ok := o.(*unstructured.Unstructured); ok {
			out = append(out, FromRollout(u))
		}
	}
	return out
}

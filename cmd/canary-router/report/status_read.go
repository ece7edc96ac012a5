package report

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"

	"github.com/canary-router/canary-router/cmd/canary-router/cmdutil"
	"github.com/canary-router/canary-router/controller/migrate"
	"github.com/canary-router/canary-router/istio"
	"github.com/canary-router/canary-router/policy/inforce"
	"github.com/canary-router/canary-router/view/podview"
)

// The resources status reads, metadata only except the policy ConfigMap.
var (
	GvrPods       = schema.GroupVersionResource{Version: "v1", Resource: "pods"}
	GvrNamespaces = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
	gvrMWCs       = schema.GroupVersionResource{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "mutatingwebhookconfigurations"}
)

// StatusPageSize bounds one list call: a cluster's pods are read in pages
// so neither the API server nor this process holds them all at once.
const StatusPageSize = 500

// ClusterSnapshot is what status reads of a cluster. Reads other than the
// pods may fail without failing the command (an operator may not be
// allowed to list webhook configurations): their errors are kept and
// reported beside what could be read.
type ClusterSnapshot struct {
	// PolicyRef is namespace/name of the policy ConfigMap.
	PolicyRef string
	// PolicyDoc is its policy.yaml; PolicyErr why it could not be read.
	PolicyDoc []byte
	PolicyErr error
	// Configs are the MutatingWebhookConfigurations, as the router reads
	// them, for revisions and tags.
	Configs    []istio.Config
	ConfigsErr error
	// Namespaces are every namespace's name and labels.
	Namespaces    []namespaceLabels
	NamespacesErr error
	// Pods are live pods by routed and injected revision, counted by the
	// router's own pod view code.
	Pods []podview.RevisionCount
	// Pins counts owner-pinned pods by workload and revision.
	Pins pinCounts
	// Workloads counts live pods by workload and injected revision, as
	// the migration's planner does (migrate.RecordOf).
	Workloads map[migrate.Ref]migrate.PodCounts
	// Overlay is a self-driving rollout's weights in force, from the
	// status object; nil when there is none or it cannot be read
	// (OverlayErr, absence excepted).
	Overlay    *inforce.Overlay
	OverlayErr error
}

type namespaceLabels struct {
	Name   string
	Labels map[string]string
}

// StatusClients loads a kubeconfig the way kubectl does (see
// operatorClients) and adds the metadata client status lists pods with.
func StatusClients(kubeconfig, kubeContext string) (kubernetes.Interface, metadata.Interface, error) {
	kube, err := cmdutil.OperatorClients(kubeconfig, kubeContext, "status")
	if err != nil {
		return nil, nil, err
	}
	meta, err := metadata.NewForConfig(kube.Config)
	if err != nil {
		return nil, nil, err
	}
	return kube.Client, meta, nil
}

// ReadCluster reads everything status shows: get the policy ConfigMap and
// list (metadata only) pods, namespaces and webhook configurations, the
// read access a kubectl user has.
func ReadCluster(ctx context.Context, client kubernetes.Interface, meta metadata.Interface, namespace, configMap string) (*ClusterSnapshot, error) {
	s := &ClusterSnapshot{PolicyRef: namespace + "/" + configMap}
	cm, err := client.CoreV1().ConfigMaps(namespace).Get(ctx, configMap, metav1.GetOptions{})
	switch {
	case err != nil:
		s.PolicyErr = err
	case cm.Data["policy.yaml"] == "":
		s.PolicyErr = fmt.Errorf("ConfigMap %s has no key policy.yaml", s.PolicyRef)
	default:
		s.PolicyDoc = []byte(cm.Data["policy.yaml"])
	}
	// Mid-rollout the weights in force are the leader's, in the status
	// object; without read access to it the policy's own weights show.
	switch st, err := client.CoreV1().ConfigMaps(namespace).Get(ctx, migrate.StatusConfigMap, metav1.GetOptions{}); {
	case err == nil:
		s.Overlay = inforce.DecodeOverlay(st.Data[inforce.OverlayKey])
	case !apierrors.IsNotFound(err):
		s.OverlayErr = err
	}
	s.ConfigsErr = EachMeta(ctx, meta.Resource(gvrMWCs), func(m *metav1.PartialObjectMetadata) {
		s.Configs = append(s.Configs, istio.Config{Name: m.Name, Rev: m.Labels[istio.LabelRev], Tag: m.Labels[istio.LabelTag]})
	})
	s.NamespacesErr = EachMeta(ctx, meta.Resource(GvrNamespaces), func(m *metav1.PartialObjectMetadata) {
		s.Namespaces = append(s.Namespaces, namespaceLabels{Name: m.Name, Labels: m.Labels})
	})
	// The pod view's own handler counts them, so status and the router's
	// canary_router_pods metric apply one reading of Istio's annotations.
	view := podview.New(podview.Options{})
	s.Pins = pinCounts{}
	var recs []migrate.PodRecord
	if err := EachMeta(ctx, meta.Resource(GvrPods), func(m *metav1.PartialObjectMetadata) {
		view.OnAdd(m, true)
		s.Pins.add(m)
		if r, ok := migrate.RecordOf(m); ok {
			recs = append(recs, r)
		}
	}); err != nil {
		return nil, fmt.Errorf("listing pods: %w", err)
	}
	s.Pods = view.Revisions()
	s.Workloads = migrate.Aggregate(recs)
	return s, nil
}

// EachMeta lists a resource page by page, metadata only, calling fn for
// each object.
func EachMeta(ctx context.Context, r metadata.ResourceInterface, fn func(*metav1.PartialObjectMetadata)) error {
	opts := metav1.ListOptions{Limit: StatusPageSize}
	for {
		list, err := r.List(ctx, opts)
		if err != nil {
			return err
		}
		for i := range list.Items {
			fn(&list.Items[i])
		}
		if list.Continue == "" {
			return nil
		}
		opts.Continue = list.Continue
	}
}

// ReadProblem words a read error for the report: forbidden reads say
// which permission is missing.
func ReadProblem(what string, err error) string {
	if apierrors.IsForbidden(err) {
		return "cannot " + what + " (forbidden): " + err.Error()
	}
	return "cannot " + what + ": " + err.Error()
}

package migratecmd

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"

	"github.com/canary-router/canary-router/cmd/canary-router/report"
	"github.com/canary-router/canary-router/controller/migrate"
	"github.com/canary-router/canary-router/istio"
	"github.com/canary-router/canary-router/policy/inforce"
)

// readPolicySnapshot reads the policy ConfigMap into a snapshot with the
// same digest the router computes for the document, so the CLI and the
// leader agree on which policy a workload was restarted for.
func readPolicySnapshot(ctx context.Context, client kubernetes.Interface, namespace, name string) (*inforce.Snapshot, error) {
	ref := namespace + "/" + name
	cm, err := client.CoreV1().ConfigMaps(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("reading policy ConfigMap %s: %w", ref, err)
	}
	doc := cm.Data["policy.yaml"]
	if doc == "" {
		return nil, fmt.Errorf("ConfigMap %s has no key policy.yaml", ref)
	}
	store := inforce.NewStore(time.Now, nil, nil)
	if _, err := store.Apply([]byte(doc), "ConfigMap "+ref); err != nil {
		return nil, fmt.Errorf("policy in %s: %w", ref, err)
	}
	// Mid-rollout the weights in force live in the status object: plan
	// against them, as the leader does, never against the policy's own.
	if st, err := client.CoreV1().ConfigMaps(namespace).Get(ctx, migrate.StatusConfigMap, metav1.GetOptions{}); err == nil {
		store.SetOverlay(inforce.DecodeOverlay(st.Data[inforce.OverlayKey]))
	}
	return store.Load(), nil
}

// readMigrationInput lists what the planner reads, once: the same view
// the leader's informers hold, by paginated lists (never a GET per
// workload).
func readMigrationInput(ctx context.Context, client kubernetes.Interface, meta metadata.Interface, rollouts dynamic.Interface,
	snap *inforce.Snapshot, state *istio.State) (migrate.Input, error) {
	in := migrate.Input{Policy: snap.Policy, Digest: snap.Digest, Revisions: migrate.LiveRevisions(snap.Policy, state), Istio: state}
	err := report.EachMeta(ctx, meta.Resource(report.GvrNamespaces), func(m *metav1.PartialObjectMetadata) {
		if m.DeletionTimestamp == nil {
			in.Namespaces = append(in.Namespaces, migrate.Namespace{Name: m.Name, Labels: m.Labels, Annotations: m.Annotations})
		}
	})
	if err != nil {
		return in, fmt.Errorf("listing namespaces: %w", err)
	}
	var recs []migrate.PodRecord
	in.Pins = map[migrate.PinKey]int{}
	err = report.EachMeta(ctx, meta.Resource(report.GvrPods), func(m *metav1.PartialObjectMetadata) {
		if r, ok := migrate.RecordOf(m); ok {
			recs = append(recs, r)
		}
		if k, ok := migrate.PinOf(m); ok {
			in.Pins[k]++
		}
	})
	if err != nil {
		return in, fmt.Errorf("listing pods: %w", err)
	}
	in.Pods = migrate.Aggregate(recs)
	apps := client.AppsV1()
	opts := metav1.ListOptions{Limit: report.StatusPageSize}
	for o := opts; ; {
		l, err := apps.Deployments("").List(ctx, o)
		if err != nil {
			return in, fmt.Errorf("listing Deployments: %w", err)
		}
		for i := range l.Items {
			in.Workloads = append(in.Workloads, migrate.FromDeployment(&l.Items[i]))
		}
		if o.Continue = l.Continue; o.Continue == "" {
			break
		}
	}
	for o := opts; ; {
		l, err := apps.StatefulSets("").List(ctx, o)
		if err != nil {
			return in, fmt.Errorf("listing StatefulSets: %w", err)
		}
		for i := range l.Items {
			in.Workloads = append(in.Workloads, migrate.FromStatefulSet(&l.Items[i]))
		}
		if o.Continue = l.Continue; o.Continue == "" {
			break
		}
	}
	for o := opts; ; {
		l, err := apps.DaemonSets("").List(ctx, o)
		if err != nil {
			return in, fmt.Errorf("listing DaemonSets: %w", err)
		}
		for i := range l.Items {
			in.Workloads = append(in.Workloads, migrate.FromDaemonSet(&l.Items[i]))
		}
		if o.Continue = l.Continue; o.Continue == "" {
			break
		}
	}
	if rollouts != nil {
		for o := opts; ; {
			l, err := rollouts.Resource(migrate.RolloutGVR).List(ctx, o)
			if err != nil {
				return in, fmt.Errorf("listing Argo Rollouts: %w", err)
			}
			for i := range l.Items {
				in.Workloads = append(in.Workloads, migrate.FromRollout(&l.Items[i]))
			}
			if o.Continue = l.GetContinue(); o.Continue == "" {
				break
			}
		}
	}
	return in, nil
}

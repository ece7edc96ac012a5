package main

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/canary-router/canary-router/test/fakeistio"
)

// waitRollouts waits until every demo Deployment has all its replicas
// updated, ready and available, and no old pods remain.
func (d *demo) waitRollouts(ctx context.Context) error {
	for _, w := range workloads {
		var last string
		err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
			dep, err := d.cluster.Client.AppsV1().Deployments(w.namespace).Get(ctx, w.name, metav1.GetOptions{})
			if err != nil {
				return false, nil
			}
			s := dep.Status
			last = fmt.Sprintf("%d updated, %d ready, %d total of %d", s.UpdatedReplicas, s.ReadyReplicas, s.Replicas, w.replicas)
			if s.ObservedGeneration < dep.Generation || s.UpdatedReplicas != w.replicas || s.ReadyReplicas != w.replicas || s.Replicas != w.replicas {
				return false, nil
			}
			pods, err := d.cluster.Client.CoreV1().Pods(w.namespace).List(ctx, metav1.ListOptions{LabelSelector: "app=" + w.name})
			return err == nil && len(pods.Items) == int(w.replicas), nil
		})
		if err != nil {
			return fmt.Errorf("deployment %s/%s did not roll out: %s", w.namespace, w.name, last)
		}
	}
	fmt.Fprintln(d.out, "    all Deployments rolled out")
	return nil
}

func (d *demo) waitServiceAccount(ctx context.Context, ns string) error {
	return wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := d.cluster.Client.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
}

// podsOn counts the demo's pods injected by rev, and all of them.
func (d *demo) podsOn(ctx context.Context, rev string) (on, total int, err error) {
	for _, ns := range []string{"shop", "payments", "search"} {
		pods, err := d.cluster.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return 0, 0, err
		}
		for i := range pods.Items {
			p := &pods.Items[i]
			if p.DeletionTimestamp != nil {
				continue
			}
			total++
			if fakeistio.InjectedRevision(p) == rev {
				on++
			}
		}
	}
	return on, total, nil
}

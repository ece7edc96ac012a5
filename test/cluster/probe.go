package cluster

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const probePodName = "cluster-start-probe"

// probePod runs one pod through scheduling and kwok's stages to Ready, then
// force-deletes it, so Start fails on a broken scheduler instead of leaving
// the first test's pods Pending.
func (c *Cluster) probePod(ctx context.Context, blame *process, watch []*process) error {
	pods := c.Client.CoreV1().Pods(metav1.NamespaceDefault)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: probePodName},
		Spec: corev1.PodSpec{
			Containers:                   []corev1.Container{{Name: "pause", Image: "registry.k8s.io/pause:3.10"}},
			AutomountServiceAccountToken: new(false),
		},
	}
	if _, err := pods.Create(ctx, pod, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create probe pod: %w", err)
	}
	err := waitFor(ctx, "probe pod scheduled and Ready", readyTimeout, blame, watch, func(ctx context.Context) (bool, error) {
		p, err := pods.Get(ctx, probePodName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if p.Spec.NodeName == "" {
			return false, fmt.Errorf("pod %s not scheduled yet", probePodName)
		}
		for _, cond := range p.Status.Conditions {
			if cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue {
				return true, nil
			}
		}
		return false, fmt.Errorf("pod %s on %s not Ready yet (phase %q)", probePodName, p.Spec.NodeName, p.Status.Phase)
	})
	if err != nil {
		return err
	}
	// Force deletion removes the pod at once, so no test ever sees it.
	err = pods.Delete(ctx, probePodName, metav1.DeleteOptions{GracePeriodSeconds: new(int64(0))})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete probe pod: %w", err)
	}
	return nil
}

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/canary-router/canary-router/policy"
	"github.com/canary-router/canary-router/test/podgen"
)

// scaleShape is how one size of the scale run is laid out: a cluster of
// Deployments, each with one ReplicaSet and its pods, spread evenly over
// namespaces the router manages.
type scaleShape struct {
	pods, podsPerWorkload, workloadsPerNamespace int
}

func (s scaleShape) workloads() int  { return s.pods / s.podsPerWorkload }
func (s scaleShape) namespaces() int { return max(1, s.workloads()/s.workloadsPerNamespace) }

// scaleNamespace names namespace i of the run.
func scaleNamespace(i int) string { return fmt.Sprintf("scale-%03d", i) }

// populate writes the cluster as the controller manager and Istio would
// have left it: namespaces opted in to the router, each Deployment with
// its ReplicaSet and pods, every pod injected by revision stable
// (sidecar.istio.io/status and the istio.io/rev annotation) and carrying
// the router's decision annotation. The pods are written directly, not
// through the router's webhook (it is not registered yet), and no
// controller manager runs: what is measured is the router watching a
// cluster of this size, not the controller manager filling it. The pods
// carry no istio.io/rev label, so Istio's stand-in injectors are not
// called for them either.
func populate(ctx context.Context, client kubernetes.Interface, s scaleShape, workers int, progress func(string)) error {
	for i := range s.namespaces() {
		if err := createNamespace(ctx, client, scaleNamespace(i), map[string]string{policy.LabelOptIn: policy.OptInEnabled}); err != nil {
			return err
		}
	}
	var done atomic.Int64
	began := time.Now()
	stop := make(chan struct{})
	go func() {
		t := time.NewTicker(15 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				n := done.Load()
				progress(fmt.Sprintf("populate: %d of %d pods in %s (%.0f/s)", n, s.pods, time.Since(began).Round(time.Second), float64(n)/time.Since(began).Seconds()))
			}
		}
	}()
	defer close(stop)
	next := make(chan int)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for w := range next {
				if err := createWorkload(ctx, client, s, w, &done); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	var err error
feed:
	for w := range s.workloads() {
		select {
		case next <- w:
		case err = <-errs:
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err != nil {
		return err
	}
	select {
	case err := <-errs:
		return err
	default:
	}
	progress(fmt.Sprintf("populate: %d namespaces, %d Deployments and ReplicaSets, %d pods in %s", s.namespaces(), s.workloads(), s.pods, time.Since(began).Round(time.Second)))
	return nil
}

// createWorkload creates Deployment w, its ReplicaSet and its pods.
func createWorkload(ctx context.Context, client kubernetes.Interface, s scaleShape, w int, done *atomic.Int64) error {
	ns := scaleNamespace(w % s.namespaces())
	name := fmt.Sprintf("app-%05d", w)
	hash := fmt.Sprintf("6c%08x", w)
	replicas := int32(s.podsPerWorkload)
	selector := &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}}
	template := corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1"}}},
	}
	d, err := client.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       appsv1.DeploymentSpec{Replicas: &replicas, Selector: selector, Template: template},
	}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("Deployment %s/%s: %w", ns, name, err)
	}
	ctrl := true
	rsTemplate := *template.DeepCopy()
	rsTemplate.Labels["pod-template-hash"] = hash
	rs, err := client.AppsV1().ReplicaSets(ns).Create(ctx, &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: name + "-" + hash, Namespace: ns, Labels: rsTemplate.Labels,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: name, UID: d.UID, Controller: &ctrl}}},
		Spec: appsv1.ReplicaSetSpec{Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: rsTemplate.Labels}, Template: rsTemplate},
	}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("ReplicaSet %s/%s: %w", ns, name, err)
	}
	for p := range s.podsPerWorkload {
		pod := scalePod(ns, name, hash, rs.UID, w*s.podsPerWorkload+p)
		if _, err := client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("pod %s/%s: %w", ns, pod.Name, err)
		}
		done.Add(1)
	}
	return nil
}

// scalePod is pod i of a workload: the load's Deployment-shaped pod
// (two containers, the controller manager's managedFields, 6.5 KB as a
// review), owned by the workload's ReplicaSet and injected by stable.
func scalePod(ns, workload, hash string, rsUID types.UID, i int) *corev1.Pod {
	pod := podgen.Pod(podgen.Managed, i)
	pod.Namespace, pod.GenerateName = ns, ""
	pod.Name = fmt.Sprintf("%s-%s-%06d", workload, hash, i)
	pod.Labels["app"], pod.Labels["pod-template-hash"] = workload, hash
	pod.OwnerReferences[0].Name, pod.OwnerReferences[0].UID = workload+"-"+hash, rsUID
	status, _ := json.Marshal(map[string]any{"containers": []string{"istio-proxy"}, "initContainers": []string{"istio-init"}, "revision": "stable"})
	pod.Annotations["sidecar.istio.io/status"] = string(status)
	pod.Annotations[policy.LabelIstioRev] = "stable"
	pod.Annotations[policy.AnnotationDecision] = fmt.Sprintf(`{"revision":"stable","reason":"weighted","unit":"Deployment/%s","generation":1,"policy":"sha256:0b1c2d3e"}`, workload)
	return pod
}

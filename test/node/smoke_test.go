package node

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestNodeRunsImportedImages: the node holds the imported images under
// their names and runs a pod from one without pulling.
func TestNodeRunsImportedImages(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	imgs, err := env.node.Images()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("images on the node: %v", imgs)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "smoke", Namespace: "default"},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "pause", Image: SandboxImage, ImagePullPolicy: corev1.PullNever}},
		},
	}
	if _, err := env.c.Client.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	defer env.c.Client.CoreV1().Pods("default").Delete(context.Background(), "smoke", metav1.DeleteOptions{})
	for {
		p, err := env.c.Client.CoreV1().Pods("default").Get(ctx, "smoke", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if p.Status.Phase == corev1.PodRunning {
			t.Logf("pod running on %s with IP %s", p.Spec.NodeName, p.Status.PodIP)
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("pod not running: %+v", p.Status)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

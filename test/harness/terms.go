package harness

import (
	"context"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/canary-router/canary-router/controller"
	"github.com/canary-router/canary-router/controller/migrate"
	"github.com/canary-router/canary-router/test/localrouter"
)

// TermWrites records every write to the status object, in order, with
// the leadership term token it carries: the frozen-leader suites count
// the writes of a deposed term that landed after a later term's.
type TermWrites struct {
	mu     sync.Mutex
	tokens []string
}

// WatchTerms starts recording the status object's writes until ctx ends.
func WatchTerms(t testing.TB, ctx context.Context, client kubernetes.Interface) *TermWrites {
	t.Helper()
	w, err := client.CoreV1().ConfigMaps(localrouter.Namespace).Watch(ctx, metav1.ListOptions{
		FieldSelector: "metadata.name=" + migrate.StatusConfigMap})
	if err != nil {
		t.Fatal(err)
	}
	tw := &TermWrites{}
	go func() {
		defer w.Stop()
		for ev := range w.ResultChan() {
			cm, ok := ev.Object.(*corev1.ConfigMap)
			if !ok || (ev.Type != watch.Added && ev.Type != watch.Modified) {
				continue
			}
			tw.mu.Lock()
			tw.tokens = append(tw.tokens, cm.Data[controller.TermKey])
			tw.mu.Unlock()
		}
	}()
	return tw
}

// Stale returns how many writes were recorded, and how many of them were
// stamped with old after the first write stamped with a later term.
func (tw *TermWrites) Stale(old controller.Token) (total, stale int) {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	later := false
	for _, raw := range tw.tokens {
		tok, ok := controller.ParseToken(raw)
		if !ok {
			continue
		}
		later = later || tok.Transitions > old.Transitions
		if later && tok == old {
			stale++
		}
	}
	return len(tw.tokens), stale
}

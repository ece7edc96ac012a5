package controller

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"k8s.io/client-go/kubernetes/fake"
)

// A term that ends (here: deposed by a later token in the status object)
// is waited for before the replica campaigns again, so two terms of one
// replica never run at once, however slowly the old one stops.
func TestRunAsLeaderWaitsForTheTerm(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var mu sync.Mutex
	active, most, terms := 0, 0, 0
	RunAsLeader(ctx, LeaderOptions{
		Client: fake.NewClientset(), Namespace: "canary-router-system", Name: "lease", Identity: "router-a_x", Log: zap.NewNop(),
		OnLeading: func(termCtx context.Context, term *Term) {
			mu.Lock()
			active++
			terms++
			most = max(most, active)
			n := terms
			mu.Unlock()
			if err := term.Check(); err != nil {
				t.Errorf("term %d: Check() = %v right after winning", n, err)
			}
			if n == 3 {
				cancel()
			} else if err := term.Fence(Token{Transitions: term.Token.Transitions + 1, Holder: "router-b_y"}.Encode()); !errors.Is(err, ErrDeposed) {
				t.Errorf("term %d: Fence = %v", n, err)
			}
			<-termCtx.Done()
			time.Sleep(300 * time.Millisecond) // a controller slow to stop
			mu.Lock()
			active--
			mu.Unlock()
		},
	})
	mu.Lock()
	defer mu.Unlock()
	if terms != 3 || most != 1 {
		t.Errorf("terms %d, most at once %d; want 3 and 1", terms, most)
	}
}

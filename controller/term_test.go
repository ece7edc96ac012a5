package controller

import (
	"context"
	"errors"
	"testing"
	"time"

	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

func TestFence(t *testing.T) {
	own := Token{Transitions: 4, Holder: "router-a_x"}
	for _, tc := range []struct {
		name     string
		recorded string
		deposed  bool
	}{
		{"no token yet", "", false},
		{"garbled token", "{not json", false},
		{"an earlier term", Token{Transitions: 3, Holder: "router-b_y"}.Encode(), false},
		{"this term", own.Encode(), false},
		{"a later term", Token{Transitions: 5, Holder: "router-b_y"}.Encode(), true},
		{"a later term of this replica", Token{Transitions: 6, Holder: "router-a_x"}.Encode(), true},
		{"the same count held by another replica", Token{Transitions: 4, Holder: "router-b_y"}.Encode(), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Fence(own, tc.recorded)
			if got := errors.Is(err, ErrDeposed); got != tc.deposed {
				t.Errorf("Fence(%s) = %v, want deposed %v", tc.recorded, err, tc.deposed)
			}
		})
	}
}

// fakeLock is the Lease as the API server holds it.
type fakeLock struct {
	id   string
	fail error
	last resourcelock.LeaderElectionRecord
}

func (f *fakeLock) Get(context.Context) (*resourcelock.LeaderElectionRecord, []byte, error) {
	return &f.last, nil, nil
}
func (f *fakeLock) Create(_ context.Context, r resourcelock.LeaderElectionRecord) error {
	return f.Update(context.Background(), r)
}
func (f *fakeLock) Update(_ context.Context, r resourcelock.LeaderElectionRecord) error {
	if f.fail != nil {
		return f.fail
	}
	f.last = r
	return nil
}
func (f *fakeLock) RecordEvent(string) {}
func (f *fakeLock) Identity() string   { return f.id }
func (f *fakeLock) Describe() string   { return "lease" }

// A replica judges its own hold by the start of its last successful
// renewal: a freeze longer than RenewDeadline ends its right to write
// the moment it wakes, before the elector notices.
func TestTermCheck(t *testing.T) {
	now := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	inner := &fakeLock{id: "router-a_x"}
	lock := &trackingLock{Interface: inner, now: func() time.Time { return now }}
	ctx := context.Background()
	if err := lock.Update(ctx, resourcelock.LeaderElectionRecord{HolderIdentity: "router-a_x", LeaderTransitions: 7}); err != nil {
		t.Fatal(err)
	}
	tok, held := lock.token()
	if !held || tok != (Token{Transitions: 7, Holder: "router-a_x"}) {
		t.Fatalf("token %+v held %v", tok, held)
	}
	termCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	term := NewTerm(termCtx, cancel, tok, lock)
	steps := []struct {
		name    string
		advance time.Duration
		renew   error // nil: a successful renewal first; errSkip: none
		leading bool
	}{
		{"just won", 0, errSkip, true},
		{"renewed 2s ago", 2 * time.Second, errSkip, true},
		{"a failed renewal keeps the last good one", 5 * time.Second, errors.New("timeout"), true},
		{"frozen past the renew deadline", 20 * time.Second, errSkip, false},
		{"a renewal after waking (as the elector's fast path would try) that the API server refuses", 0, errors.New("conflict"), false},
	}
	for _, s := range steps {
		now = now.Add(s.advance)
		if s.renew != errSkip {
			inner.fail = s.renew
			_ = lock.Update(ctx, resourcelock.LeaderElectionRecord{HolderIdentity: "router-a_x", LeaderTransitions: 7})
		}
		if err := term.Check(); (err == nil) != s.leading {
			t.Errorf("%s: Check() = %v, want leading %v", s.name, err, s.leading)
		}
	}
	// Released: the elector writes an empty holder.
	inner.fail = nil
	_ = lock.Update(ctx, resourcelock.LeaderElectionRecord{HolderIdentity: "router-a_x", LeaderTransitions: 7})
	if err := term.Check(); err != nil {
		t.Fatalf("renewed: %v", err)
	}
	_ = lock.Update(ctx, resourcelock.LeaderElectionRecord{})
	if err := term.Check(); !errors.Is(err, ErrNotLeading) {
		t.Errorf("released: Check() = %v", err)
	}
}

var errSkip = errors.New("skip")

// A status object written by a later term ends this one.
func TestTermFenceCancels(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	term := NewTerm(ctx, cancel, Token{Transitions: 2, Holder: "a"}, freshLease(true))
	if err := term.Fence(Token{Transitions: 2, Holder: "a"}.Encode()); err != nil {
		t.Fatalf("own token: %v", err)
	}
	if err := term.Fence(Token{Transitions: 3, Holder: "b"}.Encode()); !errors.Is(err, ErrDeposed) {
		t.Fatalf("later token: %v", err)
	}
	if term.Context().Err() == nil {
		t.Error("the term was not cancelled")
	}
	if err := term.Check(); !errors.Is(err, ErrNotLeading) {
		t.Errorf("after deposal Check() = %v", err)
	}
}

type freshLease bool

func (f freshLease) Fresh(time.Duration) bool { return bool(f) }

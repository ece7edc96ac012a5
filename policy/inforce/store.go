package inforce

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/canary-router/canary-router/policy"
)

// Snapshot is one validated policy as it was applied. Admissions read one
// snapshot each, so a request never mixes two policies.
type Snapshot struct {
	Policy *policy.Policy
	// Generation counts successful applies in this process, from 1.
	Generation int64
	// Digest is a short hash of the policy document, the same in every
	// replica that applied the same document.
	Digest string
	// Source says where the document came from (a file path, a ConfigMap).
	Source  string
	Applied time.Time
	// Rollout is the self-driving rollout's overlay in force, nil when
	// Policy's own weights route; Policy and Digest already include it.
	Rollout *Overlay
	sum     [sha256.Size]byte
}

// Store holds the policy in force: parse, validate, then swap atomically,
// keeping the last good snapshot when a new document is invalid.
type Store struct {
	cur atomic.Pointer[Snapshot]
	// mu serialises Apply and SetOverlay so generations are handed out in
	// swap order. base is the operator's document as applied and overlay
	// the rollout's weights; cur is the two combined, computed on the
	// (rare) change of either so an admission still reads one pointer.
	mu      sync.Mutex
	base    *Snapshot
	overlay *Overlay
	now     func() time.Time
	onApply func(*Snapshot)
	onError func(error)
}

// NewStore returns an empty store. now is the clock; onApply and onError,
// either of which may be nil, observe each outcome (metrics, events).
func NewStore(now func() time.Time, onApply func(*Snapshot), onError func(error)) *Store {
	return &Store{now: now, onApply: onApply, onError: onError}
}

// Load returns the snapshot in force, or nil before the first good policy.
func (s *Store) Load() *Snapshot { return s.cur.Load() }

// policyParseDeadline bounds a policy parse where the router applies one
// (the ConfigMap watcher, a mounted file). Parsing is bounded by the
// document's size and the gate query language; the deadline is what
// keeps the router's own view of that promise, should a parser bug or a
// missed case break it: a document not parsed in time is rejected, and
// the policy in force stays.
var policyParseDeadline = 5 * time.Second

// parseWithin is parse(data), given up after d. The abandoned parse runs
// on to its end on its own goroutine.
func parseWithin(parse func([]byte) (*policy.Policy, error), data []byte, d time.Duration) (*policy.Policy, error) {
	type result struct {
		p   *policy.Policy
		err error
	}
	done := make(chan result, 1)
	go func() {
		p, err := parse(data)
		done <- result{p, err}
	}()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case r := <-done:
		return r.p, r.err
	case <-timer.C:
		return nil, fmt.Errorf("%s: not parsed within %v: the document is refused as too costly to check", "policy.yaml", d)
	}
}

// Apply parses and validates data and, only if it is valid, makes it the
// policy in force. An invalid document, or one not parsed within
// policyParseDeadline, leaves the previous one in force.
func (s *Store) Apply(data []byte, source string) (*Snapshot, error) {
	p, err := parseWithin(policy.Parse, data, policyParseDeadline)
	if err != nil {
		err = fmt.Errorf("policy from %s rejected, previous policy stays in force: %w", source, err)
		s.Reject(err)
		return nil, err
	}
	sum := sha256.Sum256(data)
	s.mu.Lock()
	defer s.mu.Unlock()
	gen := int64(1)
	if prev := s.base; prev != nil {
		if prev.sum == sum {
			// The same document again (a resync, a no-op edit): keep the
			// generation so decisions stay attributable to one apply.
			return s.cur.Load(), nil
		}
		gen = prev.Generation + 1
	}
	snap := &Snapshot{
		Policy:     p,
		Generation: gen,
		Digest:     hex.EncodeToString(sum[:4]),
		Source:     source,
		Applied:    s.now(),
		sum:        sum,
	}
	s.base = snap
	eff := withOverlay(snap, s.overlay)
	s.cur.Store(eff)
	if s.onApply != nil {
		s.onApply(eff)
	}
	return eff, nil
}

// SetOverlay lays a rollout's weights in force over the policy (nil takes
// them away). It never rejects: weights that do not fit the policy are
// ignored (withOverlay) until the policy or the overlay changes.
func (s *Store) SetOverlay(o *Overlay) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if overlayEqual(s.overlay, o) {
		return
	}
	s.overlay = o
	if s.base == nil {
		return
	}
	prev := s.cur.Load()
	eff := withOverlay(s.base, o)
	if eff == prev {
		return
	}
	s.cur.Store(eff)
	if s.onApply != nil && (prev == nil || eff.Digest != prev.Digest) {
		s.onApply(eff)
	}
}

// CurrentOverlay is the overlay last set.
func (s *Store) CurrentOverlay() *Overlay {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.overlay
}

// Base returns the operator's policy as applied, without a rollout's
// overlay: what `status` compares with the ConfigMap.
func (s *Store) Base() *Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.base
}

// ApplyFile reads a policy document from path (the mounted ConfigMap) and
// applies it. A ConfigMap holds at most 1 MiB, so reading it whole is safe;
// Parse reports a document over policy.MaxSize with its size.
func (s *Store) ApplyFile(path string) (*Snapshot, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		err = fmt.Errorf("reading policy: %w", err)
		s.Reject(err)
		return nil, err
	}
	return s.Apply(data, path)
}

// Reject reports a document that was not applied.
func (s *Store) Reject(err error) {
	if s.onError != nil {
		s.onError(err)
	}
}

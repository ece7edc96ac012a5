package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// TermKey is the status object's key holding the Token of the term that
// wrote it last. A leader reads it before acting and stops when it names
// a later term than its own: another replica has led since.
const TermKey = "leader.term"

// ErrNotLeading is returned instead of a write when this replica no longer
// holds the Lease by its own clock, or its term was cancelled.
var ErrNotLeading = errors.New("not leading: this replica's leadership term is over")

// ErrDeposed is returned when the status object was written by a later
// term than this replica's: another replica led since, so this one must
// not act on anything it read or planned.
var ErrDeposed = errors.New("deposed: the status object was written by a later leadership term")

// Token names a leadership term: the Lease's leaderTransitions when the
// term was won, and the holder. leaderTransitions only grows, so a larger
// count is a later term.
type Token struct {
	Transitions int32  `json:"transitions"`
	Holder      string `json:"holder"`
}

// Encode renders a token for TermKey.
func (t Token) Encode() string {
	b, _ := json.Marshal(t) // plain struct: cannot fail
	return string(b)
}

// ParseToken reads TermKey's value; ok is false for "" or garbage.
func ParseToken(s string) (Token, bool) {
	var t Token
	if s == "" || json.Unmarshal([]byte(s), &t) != nil || t.Holder == "" {
		return Token{}, false
	}
	return t, true
}

// Fence decides whether a leader holding own may act on a status object
// that records recorded (TermKey's raw value). nil: act. ErrDeposed: a
// later term, or another holder of the same one, wrote it. An absent or
// unreadable token is no evidence of a later term: the resourceVersion
// precondition on the write still guards that object.
func Fence(own Token, recorded string) error {
	rec, ok := ParseToken(recorded)
	if !ok {
		return nil
	}
	if rec.Transitions > own.Transitions || (rec.Transitions == own.Transitions && rec.Holder != own.Holder) {
		return fmt.Errorf("%w (term %d of %s; this replica holds term %d)", ErrDeposed, rec.Transitions, rec.Holder, own.Transitions)
	}
	return nil
}

// Term is one leadership term of this replica. Every write the leader
// makes calls Check first; a write that reads the status object also
// passes its TermKey through Fence.
type Term struct {
	Token Token
	ctx   context.Context
	// cancel ends the term: the elector stops renewing and releases the
	// Lease, and the replica campaigns again only after every controller
	// of the term has returned.
	cancel context.CancelFunc
	lease  Lease
}

// Lease is this replica's own view of its hold on the Lease.
type Lease interface {
	// Fresh reports whether this replica holds the Lease and last renewed
	// it less than within ago, by its own clock.
	Fresh(within time.Duration) bool
}

// NewTerm returns a term under ctx that cancel ends, holding token while
// lease is fresh. RunAsLeader makes the real ones; tests make their own.
func NewTerm(ctx context.Context, cancel context.CancelFunc, token Token, lease Lease) *Term {
	return &Term{Token: token, ctx: ctx, cancel: cancel, lease: lease}
}

// Context is the term's context: done when the term ends.
func (t *Term) Context() context.Context { return t.ctx }

// Check returns nil while this replica may write: the term is not over
// and, by this replica's own clock, its last successful renewal of the
// Lease is more recent than RenewDeadline. The elector gives up at that
// same point; other replicas may take the Lease only after LeaseDuration,
// so the gap between the two is the margin for clock rate and the write's
// own latency. A process frozen past its lease (GC pause, SIGSTOP) fails
// this check the moment it wakes, before the elector notices.
func (t *Term) Check() error {
	if t.ctx.Err() != nil {
		return ErrNotLeading
	}
	if !t.lease.Fresh(RenewDeadline) {
		return fmt.Errorf("%w (last Lease renewal older than %s)", ErrNotLeading, RenewDeadline)
	}
	return nil
}

// Fence checks the term and then the status object's token (TermKey's
// raw value); on ErrDeposed it ends the term, so the replica stops acting
// at once and campaigns again from scratch.
func (t *Term) Fence(recorded string) error {
	if err := t.Check(); err != nil {
		return err
	}
	if err := Fence(t.Token, recorded); err != nil {
		t.cancel()
		return err
	}
	return nil
}

// trackingLock is the Lease lock as the elector uses it, remembering when
// this replica last wrote the Lease as its holder (the start of that
// write, which is never later than when another replica saw it) and the
// leaderTransitions it wrote.
type trackingLock struct {
	resourcelock.Interface
	now func() time.Time

	mu          sync.Mutex
	held        bool
	won         bool
	renewed     time.Time
	transitions int32
}

var _ resourcelock.Interface = (*trackingLock)(nil)

func (l *trackingLock) Create(ctx context.Context, r resourcelock.LeaderElectionRecord) error {
	start := l.now()
	err := l.Interface.Create(ctx, r)
	l.record(r, start, err)
	return err
}

func (l *trackingLock) Update(ctx context.Context, r resourcelock.LeaderElectionRecord) error {
	start := l.now()
	err := l.Interface.Update(ctx, r)
	l.record(r, start, err)
	return err
}

func (l *trackingLock) record(r resourcelock.LeaderElectionRecord, start time.Time, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if r.HolderIdentity != l.Identity() {
		// A release (holder "") ends the hold even if it failed.
		l.held = false
		return
	}
	if err != nil {
		return
	}
	l.held, l.won, l.renewed, l.transitions = true, true, start, int32(r.LeaderTransitions)
}

// everHeld reports whether this lock ever won the Lease.
func (l *trackingLock) everHeld() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.won
}

// Fresh implements Lease.
func (l *trackingLock) Fresh(within time.Duration) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.held && l.now().Sub(l.renewed) < within
}

// token is the term this replica holds, ok false when it holds none.
func (l *trackingLock) token() (Token, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Token{Transitions: l.transitions, Holder: l.Identity()}, l.held
}

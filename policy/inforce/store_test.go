package inforce

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/canary-router/canary-router/policy"
)

func TestStoreKeepsLastGood(t *testing.T) {
	var applied []int64
	var rejected []error
	s := NewStore(func() time.Time { return time.Unix(100, 0) },
		func(s *Snapshot) { applied = append(applied, s.Generation) },
		func(err error) { rejected = append(rejected, err) })
	if s.Load() != nil {
		t.Fatal("a new store has a policy")
	}
	steps := []struct {
		doc     string
		wantErr bool
		wantGen int64
	}{
		{testPolicy, false, 1},
		{"granularity: pod\ntargets: [{revision: a, weight: 90}]\n", true, 1},
		{testPolicy, false, 1}, // same document: no new generation
		{"granularity: pod\ntargets: [{revision: a, weight: 100}]\n", false, 2},
		{"not: [valid", true, 2},
	}
	for i, st := range steps {
		_, err := s.Apply([]byte(st.doc), "test")
		if (err != nil) != st.wantErr {
			t.Fatalf("step %d: error %v, want error %v", i, err, st.wantErr)
		}
		if got := s.Load().Generation; got != st.wantGen {
			t.Fatalf("step %d: generation %d in force, want %d", i, got, st.wantGen)
		}
	}
	if len(applied) != 2 || len(rejected) != 2 {
		t.Fatalf("applied %v, rejected %v", applied, rejected)
	}
	if s.Load().Policy.Targets[0].Revision != "a" {
		t.Fatalf("policy in force %+v", s.Load().Policy)
	}
}

func TestStoreFileErrors(t *testing.T) {
	var rejected error
	s := NewStore(time.Now, nil, func(err error) { rejected = err })
	if _, err := s.ApplyFile(t.TempDir() + "/missing.yaml"); err == nil || rejected == nil {
		t.Fatalf("missing file: err %v, reported %v", err, rejected)
	}
}

// TestStoreSnapshotsAreWhole: readers racing with applies see one policy or
// the other, never a mix (run with -race).
func TestStoreSnapshotsAreWhole(t *testing.T) {
	s := NewStore(time.Now, nil, nil)
	docs := []string{
		"granularity: pod\ntargets: [{revision: a, weight: 100}]\n",
		"granularity: namespace\ntargets: [{revision: b, weight: 100}]\n",
	}
	if _, err := s.Apply([]byte(docs[0]), "0"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 2000 {
				snap := s.Load()
				rev, g := snap.Policy.Targets[0].Revision, snap.Policy.Granularity
				if (rev == "a") != (g == "pod") {
					select {
					case errs <- errors.New("mixed snapshot: " + rev + " " + string(g)):
					default:
					}
				}
			}
		}()
	}
	for i := range 200 {
		if _, err := s.Apply([]byte(docs[i%2]), "flip"); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
}

func TestParseWithinGivesUp(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	slow := func([]byte) (*policy.Policy, error) {
		<-release
		return nil, nil
	}
	start := time.Now()
	p, err := parseWithin(slow, []byte("x"), 50*time.Millisecond)
	if p != nil || err == nil || !strings.Contains(err.Error(), "not parsed within 50ms") {
		t.Fatalf("parseWithin = %v, %v; want the deadline's error", p, err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("parseWithin returned after %v, want about 50ms", took)
	}
}

// testPolicy is a valid two-target policy.
const testPolicy = `granularity: workload
seed: unit-test
targets:
  - revision: stable
    weight: 70
  - revision: canary
    weight: 30
`

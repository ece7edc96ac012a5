package policy

import (
	"testing"
	"time"
)

func TestMigrationBlock(t *testing.T) {
	const head = "granularity: workload\ntargets: [{revision: stable, weight: 100}]\n"
	for _, tc := range []struct {
		name string
		doc  string
		want *Migration
	}{
		{name: "absent: off", doc: head},
		{name: "empty block: on with defaults", doc: head + "migration: {}\n",
			want: &Migration{Enabled: true, BatchSize: 5, Interval: 30 * time.Second, ReadinessTimeout: 5 * time.Minute}},
		{name: "every field", doc: head + "migration: {batchSize: 3, interval: 10s, readinessTimeout: 2m}\n",
			want: &Migration{Enabled: true, BatchSize: 3, Interval: 10 * time.Second, ReadinessTimeout: 2 * time.Minute}},
		{name: "kept but switched off", doc: head + "migration: {enabled: false, batchSize: 2}\n",
			want: &Migration{BatchSize: 2, Interval: 30 * time.Second, ReadinessTimeout: 5 * time.Minute}},
		{name: "zero interval", doc: head + "migration: {interval: 0s}\n",
			want: &Migration{Enabled: true, BatchSize: 5, ReadinessTimeout: 5 * time.Minute}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse([]byte(tc.doc))
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tc.want == nil && p.Migration != nil:
				t.Fatalf("migration = %+v, want none", *p.Migration)
			case tc.want != nil && (p.Migration == nil || *p.Migration != *tc.want):
				t.Fatalf("migration = %+v, want %+v", p.Migration, *tc.want)
			}
		})
	}
}

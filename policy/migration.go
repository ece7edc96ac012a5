package policy

import (
	"strconv"
	"time"
)

// Migration defaults and bounds. The defaults follow Sail Operator's
// SEP75: small batches, a pause between them so a bad revision shows
// before it spreads, and a readiness timeout long enough for a slow image
// pull.
const (
	DefaultMigrationBatchSize        = 5
	DefaultMigrationInterval         = 30 * time.Second
	DefaultMigrationReadinessTimeout = 5 * time.Minute
	maxMigrationBatchSize            = 1000
	maxMigrationDuration             = 24 * time.Hour
)

var migrationFields = []string{"enabled", "batchSize", "interval", "readinessTimeout"}

// Migration is the policy's optional migration block: whether the leader
// restarts drifted workloads on its own, and how fast. Absent, the router
// never restarts anything by itself (`canary-router migrate --apply`
// still can).
type Migration struct {
	// Enabled turns on in-cluster migration. A block without it is on: an
	// operator who writes the block means it; `enabled: false` keeps the
	// settings while switching it off.
	Enabled bool `json:"enabled"`
	// BatchSize is the most workloads rolling at once.
	BatchSize int `json:"batchSize"`
	// Interval is the wait after a batch completes before the next starts.
	Interval time.Duration `json:"interval"`
	// ReadinessTimeout bounds one batch; past it the migration pauses.
	ReadinessTimeout time.Duration `json:"readinessTimeout"`
}

// DefaultMigration is the block's settings when a field is left out, and
// what the CLI uses when the policy has no block.
func DefaultMigration() Migration {
	return Migration{BatchSize: DefaultMigrationBatchSize, Interval: DefaultMigrationInterval,
		ReadinessTimeout: DefaultMigrationReadinessTimeout}
}

// decodeMigration decodes and validates the migration block.
func decodeMigration(errs *ValidationError, path string, v any) *Migration {
	m, ok := asMapping(errs, path, v)
	if !ok {
		return nil
	}
	out := DefaultMigration()
	out.Enabled = true
	seen := make(map[string]bool, len(m))
	for _, it := range m {
		key, fpath, ok := fieldKey(errs, path, it.Key, migrationFields, seen)
		if !ok || it.Value == nil {
			continue
		}
		switch key {
		case "enabled":
			b, isBool := it.Value.(bool)
			if !isBool {
				errs.add(fpath, "must be true or false")
				continue
			}
			out.Enabled = b
		case "batchSize":
			n, ok := asNumber(errs, fpath, it.Value)
			if !ok {
				continue
			}
			if n != float64(int(n)) || n < 1 || n > maxMigrationBatchSize {
				errs.add(fpath, "must be a whole number from 1 to "+strconv.Itoa(maxMigrationBatchSize))
				continue
			}
			out.BatchSize = int(n)
		case "interval":
			if d, ok := asDuration(errs, fpath, it.Value, 0); ok {
				out.Interval = d
			}
		case "readinessTimeout":
			if d, ok := asDuration(errs, fpath, it.Value, time.Second); ok {
				out.ReadinessTimeout = d
			}
		}
	}
	return &out
}

// asDuration reads a Go duration string such as "30s" or "5m", at least
// least and at most a day: a longer wait is a stalled migration.
func asDuration(errs *ValidationError, path string, v any, least time.Duration) (time.Duration, bool) {
	s, ok := v.(string)
	if !ok {
		errs.add(path, `must be a duration such as "30s" or "5m"`)
		return 0, false
	}
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		errs.add(path, `must be a duration such as "30s" or "5m"`)
		return 0, false
	case d < least || d > maxMigrationDuration:
		errs.add(path, "must be from "+least.String()+" to 24h")
		return 0, false
	}
	return d, true
}

package policy

import "testing"

// mustParse parses a policy document a test relies on being valid.
func mustParse(tb testing.TB, doc string) *Policy {
	tb.Helper()
	p, err := Parse([]byte(doc))
	if err != nil {
		tb.Fatalf("Parse(%q): %v", doc, err)
	}
	return p
}

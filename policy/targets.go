package policy

// SameRevisions says whether two target lists name the same revisions in
// the same order, whatever their weights: the test for whether a set of
// weights in force (a rollout's) still applies to a policy.
func SameRevisions(a, b []Target) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Revision != b[i].Revision {
			return false
		}
	}
	return true
}

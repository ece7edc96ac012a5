package istio

import (
	"maps"
	"slices"
)

// Revisions returns the names of the revisions (injector configs labelled
// istio.io/rev without istio.io/tag), sorted. canary-router init and
// uninstall choose among them.
func (s *State) Revisions() []string { return slices.Sorted(maps.Keys(s.revisions)) }

// Tags returns each revision tag and the revision it points to.
func (s *State) Tags() map[string]string { return maps.Clone(s.tags) }

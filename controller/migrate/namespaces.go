package migrate

import "github.com/canary-router/canary-router/view/nsview"

// NamespacesOf lists the namespaces the migration considers from the
// namespace view: every one but those being deleted and the router's own.
func NamespacesOf(view *nsview.View, ownNamespace string) func() []Namespace {
	return func() []Namespace {
		list := view.List()
		out := make([]Namespace, 0, len(list))
		for _, ns := range list {
			if !ns.Deleting && ns.Name != ownNamespace {
				out = append(out, Namespace{Name: ns.Name, Labels: ns.Labels, Annotations: ns.Annotations, ResourceVersion: ns.ResourceVersion})
			}
		}
		return out
	}
}

package policy

import "strings"

// FieldError is one problem in a policy document, located by its field
// path (e.g. "targets[1].weight"), or "policy.yaml" for the whole document.
type FieldError struct {
	Field  string
	Reason string
}

// Error renders the problem as "<field>: <reason>".
func (e FieldError) Error() string { return e.Field + ": " + e.Reason }

// ValidationError lists every problem found in a policy document, so an
// operator fixes them in one edit rather than one kubectl apply each.
type ValidationError []FieldError

// Error joins the problems with "; ".
func (v ValidationError) Error() string {
	var b strings.Builder
	for i, e := range v {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// add records a problem.
func (v *ValidationError) add(field, reason string) {
	*v = append(*v, FieldError{Field: field, Reason: reason})
}

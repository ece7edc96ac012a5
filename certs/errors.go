package certs

import (
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// APIError is a failed API call on one of the objects the certificate
// manager owns, naming the verb and object so that a missing RBAC rule can
// be read straight from the message.
type APIError struct {
	Verb, Resource, Namespace, Name string
	Err                             error
}

// Error names the call and, for a Forbidden, says it is a permission
// problem.
func (e *APIError) Error() string {
	obj := e.Resource
	if e.Name != "" {
		obj += "/" + e.Name
	}
	if e.Namespace != "" {
		obj += " in namespace " + e.Namespace
	}
	if apierrors.IsForbidden(e.Err) {
		return fmt.Sprintf("permission denied: cannot %s %s (grant the verb in the router's RBAC, see docs/certificates.md): %v", e.Verb, obj, e.Err)
	}
	return fmt.Sprintf("%s %s: %v", e.Verb, obj, e.Err)
}

// Unwrap returns the API error, so apierrors.IsForbidden and friends work.
func (e *APIError) Unwrap() error { return e.Err }

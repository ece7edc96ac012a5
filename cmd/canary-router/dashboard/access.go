package dashboard

import (
	"context"
	"fmt"
	"sync"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	authorizationclient "k8s.io/client-go/kubernetes/typed/authorization/v1"
)

// Permission is whether the user may make a write, and why not.
type Permission struct {
	Allowed bool `json:"allowed"`
	// Reason says why not; or, when the check itself failed, that the
	// button is left on for the API server to decide.
	Reason string `json:"reason,omitempty"`
}

// Access asks the API server, with a SelfSubjectAccessReview, whether the
// user of the kubeconfig may make one write: the same RBAC the write will
// meet, so a button the user cannot use is disabled with the reason.
// Answers are kept for TTL, so a page polling every few seconds costs the
// API server one review per TTL, and a new RoleBinding shows within it.
type Access struct {
	Client authorizationclient.SelfSubjectAccessReviewInterface
	// Attributes is the write checked.
	Attributes authorizationv1.ResourceAttributes
	TTL        time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time

	mu   sync.Mutex
	last Permission
	at   time.Time
}

// Check returns the user's permission, from the cache while fresh.
func (a *Access) Check(ctx context.Context) Permission {
	now := time.Now
	if a.Now != nil {
		now = a.Now
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.at.IsZero() && now().Sub(a.at) < a.TTL {
		return a.last
	}
	p, cache := a.review(ctx)
	if cache {
		a.last, a.at = p, now()
	}
	return p
}

// review makes one SelfSubjectAccessReview; cache is false when it could
// not be made (asked again next time).
func (a *Access) review(ctx context.Context) (p Permission, cache bool) {
	attrs := a.Attributes
	res, err := a.Client.Create(ctx, &authorizationv1.SelfSubjectAccessReview{
		Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &attrs},
	}, metav1.CreateOptions{})
	if err != nil {
		// Not knowing is no reason to take the button away: the write
		// itself meets RBAC and the page shows its refusal.
		return Permission{Allowed: true, Reason: "could not check your access (" + err.Error() + "); the API server decides"}, false
	}
	if res.Status.Allowed {
		return Permission{Allowed: true}, true
	}
	why := fmt.Sprintf("your user may not %s %s", attrs.Verb, describe(attrs))
	if res.Status.Reason != "" {
		why += ": " + res.Status.Reason
	}
	if res.Status.EvaluationError != "" {
		why += " (" + res.Status.EvaluationError + ")"
	}
	return Permission{Reason: why}, true
}

// describe names a resource as kubectl auth can-i does:
// configmaps/canary-router-status in namespace x.
func describe(a authorizationv1.ResourceAttributes) string {
	s := a.Resource
	if a.Group != "" {
		s += "." + a.Group
	}
	if a.Name != "" {
		s += "/" + a.Name
	}
	if a.Namespace != "" {
		s += " in namespace " + a.Namespace
	}
	return s
}

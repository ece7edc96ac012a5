package dashboard

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// reviewer answers SelfSubjectAccessReviews with allowed, or fails with
// err, counting the reviews and keeping the last one asked.
func reviewer(allowed bool, reason string, err error) (*fake.Clientset, *int, *authorizationv1.ResourceAttributes) {
	c := fake.NewClientset()
	n := 0
	var asked authorizationv1.ResourceAttributes
	c.PrependReactor("create", "selfsubjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		n++
		r := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SelfSubjectAccessReview)
		asked = *r.Spec.ResourceAttributes
		if err != nil {
			return true, nil, err
		}
		r.Status = authorizationv1.SubjectAccessReviewStatus{Allowed: allowed, Reason: reason}
		return true, r, nil
	})
	return c, &n, &asked
}

func TestAccess(t *testing.T) {
	attrs := authorizationv1.ResourceAttributes{Namespace: "canary-router-system", Verb: "patch", Resource: "configmaps", Name: "canary-router-status"}
	tests := []struct {
		name        string
		allowed     bool
		reason      string
		err         error
		wantAllowed bool
		wantReason  string
		wantCached  bool
	}{
		{name: "allowed", allowed: true, wantAllowed: true, wantCached: true},
		{name: "denied", reason: "no RBAC policy matched", wantReason: "your user may not patch configmaps/canary-router-status in namespace canary-router-system: no RBAC policy matched", wantCached: true},
		{name: "review failed: left to the API server", err: errors.New("connection refused"), wantAllowed: true, wantReason: "could not check your access"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, n, asked := reviewer(tt.allowed, tt.reason, tt.err)
			now := time.Unix(1000, 0)
			a := &Access{Client: c.AuthorizationV1().SelfSubjectAccessReviews(), Attributes: attrs, TTL: 30 * time.Second,
				Now: func() time.Time { return now }}
			p := a.Check(context.Background())
			if p.Allowed != tt.wantAllowed || !strings.Contains(p.Reason, tt.wantReason) || (tt.wantReason == "" && p.Reason != "") {
				t.Errorf("got %+v, want allowed %v, reason %q", p, tt.wantAllowed, tt.wantReason)
			}
			if *asked != attrs {
				t.Errorf("reviewed %+v, want %+v", *asked, attrs)
			}
			now = now.Add(10 * time.Second)
			a.Check(context.Background())
			if want := map[bool]int{true: 1, false: 2}[tt.wantCached]; *n != want {
				t.Errorf("%d reviews after two checks within the TTL, want %d", *n, want)
			}
			now = now.Add(30 * time.Second)
			a.Check(context.Background())
			if want := map[bool]int{true: 2, false: 3}[tt.wantCached]; *n != want {
				t.Errorf("%d reviews after the TTL, want %d", *n, want)
			}
		})
	}
}

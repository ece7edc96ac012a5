package certs

import (
	"context"
	"fmt"
	"strings"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Permission is one API permission the self-managed mode needs.
type Permission struct {
	Verb, Group, Resource string
	// Namespace is empty for cluster-scoped resources.
	Namespace string
	// Name is empty where RBAC cannot restrict by name: a create request
	// carries no name when it is authorized.
	Name string
}

// String renders p as kubectl names objects, e.g. `get secrets/x in
// namespace y`; no quotes, so the message reads the same in a JSON log.
func (p Permission) String() string {
	res := p.Resource
	if p.Group != "" {
		res += "." + p.Group
	}
	if p.Name != "" {
		res += "/" + p.Name
	}
	s := p.Verb + " " + res
	if p.Namespace != "" {
		s += " in namespace " + p.Namespace
	}
	return s
}

// RequiredPermissions lists every permission self-managed mode uses, so the
// router can check them all at start and the RBAC manifests can be held
// against the same list. list and watch come from the informers that
// notice a new CA or a reset caBundle; they ask with a metadata.name field
// selector, which RBAC matches against resourceNames.
func RequiredPermissions(namespace, secretName, webhookConfigName string) []Permission {
	var ps []Permission
	for _, v := range []string{"get", "list", "watch", "update"} {
		ps = append(ps, Permission{Verb: v, Resource: "secrets", Namespace: namespace, Name: secretName})
	}
	ps = append(ps, Permission{Verb: "create", Resource: "secrets", Namespace: namespace})
	for _, r := range []string{resourceMWC, resourceVWC} {
		for _, v := range []string{"get", "list", "watch", "patch"} {
			ps = append(ps, Permission{Verb: v, Group: "admissionregistration.k8s.io", Resource: r, Name: webhookConfigName})
		}
	}
	return ps
}

// CheckPermissions asks the API server, through SelfSubjectAccessReviews
// (which every authenticated identity may create), whether the router may
// do each of perms, and returns one error naming every permission denied.
func CheckPermissions(ctx context.Context, client kubernetes.Interface, perms []Permission) error {
	var denied []string
	for _, p := range perms {
		review := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
			ResourceAttributes: &authorizationv1.ResourceAttributes{
				Verb: p.Verb, Group: p.Group, Resource: p.Resource, Namespace: p.Namespace, Name: p.Name,
			},
		}}
		out, err := client.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("checking permission to %s: %w", p, err)
		}
		if !out.Status.Allowed {
			denied = append(denied, p.String())
		}
	}
	if len(denied) > 0 {
		return fmt.Errorf("--cert-mode=self-managed needs permissions this identity lacks (see docs/certificates.md, RBAC): cannot %s",
			strings.Join(denied, "; cannot "))
	}
	return nil
}

package certs

import (
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	clocktesting "k8s.io/utils/clock/testing"
)

func TestCheckPermissionsNamesEveryDenial(t *testing.T) {
	client := fake.NewClientset()
	// Allow everything but updating the Secret and patching the VWC.
	client.PrependReactor("create", "selfsubjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		r := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SelfSubjectAccessReview)
		ra := r.Spec.ResourceAttributes
		denied := (ra.Resource == "secrets" && ra.Verb == "update") || (ra.Resource == resourceVWC && ra.Verb == "patch")
		r.Status.Allowed = !denied
		return true, r, nil
	})
	perms := RequiredPermissions(testNS, "canary-router-ca", "canary-router")
	err := CheckPermissions(t.Context(), client, perms)
	if err == nil {
		t.Fatal("CheckPermissions passed with two permissions denied")
	}
	for _, want := range []string{
		"cannot update secrets/canary-router-ca in namespace canary-router-system",
		"cannot patch validatingwebhookconfigurations.admissionregistration.k8s.io/canary-router",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if strings.Count(err.Error(), "cannot ") != 2 {
		t.Errorf("error lists more than the two denials: %v", err)
	}
}

func TestRequiredPermissionsCreateHasNoName(t *testing.T) {
	// RBAC cannot authorize a create by resourceNames: the request carries
	// no name when it is authorized, so the check must not ask with one.
	for _, p := range RequiredPermissions(testNS, "canary-router-ca", "canary-router") {
		if p.Verb == "create" && p.Name != "" {
			t.Errorf("%s: a create with a name would pass the check and fail for real", p)
		}
	}
}

func TestRunStopsOnForbidden(t *testing.T) {
	client := fake.NewClientset(routerMWC())
	client.PrependReactor("get", "secrets", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "secrets"}, "canary-router-ca", errors.New("RBAC: no"))
	})
	m := newManager(t, client, clocktesting.NewFakeClock(t0), Options{})
	m.o.Log = zap.NewNop()
	done := make(chan error, 1)
	go func() { done <- m.Run(t.Context()) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "permission denied: cannot get secrets/canary-router-ca in namespace canary-router-system") {
			t.Fatalf("Run: %v, want a permission error naming the verb and the Secret", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run kept going after a Forbidden on its first pass")
	}
}

package uninstall

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/canary-router/canary-router/cmd/canary-router/cmdutil"
	authorizationv1 "k8s.io/api/authorization/v1"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
)

// Kinds of the router's objects that uninstall deletes.
const (
	kindMWC                = "MutatingWebhookConfiguration"
	kindVWC                = "ValidatingWebhookConfiguration"
	kindNamespace          = "Namespace"
	kindVAPBinding         = "ValidatingAdmissionPolicyBinding"
	kindVAP                = "ValidatingAdmissionPolicy"
	kindClusterRoleBinding = "ClusterRoleBinding"
	kindClusterRole        = "ClusterRole"
	kindRoleBinding        = "RoleBinding"
	kindRole               = "Role"
)

// routerObject is one object uninstall deletes.
type routerObject struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}

// routerObjects lists the router's objects that exist: the webhook
// configurations (by name, as deploy/base/webhooks.yaml names them), the
// router's namespace, then everything else the manifests label
// app.kubernetes.io/part-of=canary-router outside that namespace.
// objectsByPhase orders them for deletion.
func (u *uninstaller) routerObjects(ctx context.Context) ([]routerObject, error) {
	var out []routerObject
	adm := u.client.AdmissionregistrationV1()
	if _, err := adm.MutatingWebhookConfigurations().Get(ctx, cmdutil.WebhookConfigName, metav1.GetOptions{}); err == nil {
		out = append(out, routerObject{Kind: kindMWC, Name: cmdutil.WebhookConfigName})
	} else if !apierrors.IsNotFound(err) {
		return nil, err
	}
	if _, err := adm.ValidatingWebhookConfigurations().Get(ctx, cmdutil.WebhookConfigName, metav1.GetOptions{}); err == nil {
		out = append(out, routerObject{Kind: kindVWC, Name: cmdutil.WebhookConfigName})
	} else if !apierrors.IsNotFound(err) {
		return nil, err
	}
	if _, err := u.client.CoreV1().Namespaces().Get(ctx, u.c.namespace, metav1.GetOptions{}); err == nil {
		out = append(out, routerObject{Kind: kindNamespace, Name: u.c.namespace})
	} else if !apierrors.IsNotFound(err) {
		return nil, err
	}
	sel := metav1.ListOptions{LabelSelector: partOfSelector}
	rbac := u.client.RbacV1()
	// Bindings before roles, so nothing is left bound to a missing role.
	lists := []struct {
		kind string
		list func() (runtime.Object, error)
	}{
		{kindVAPBinding, func() (runtime.Object, error) { return adm.ValidatingAdmissionPolicyBindings().List(ctx, sel) }},
		{kindVAP, func() (runtime.Object, error) { return adm.ValidatingAdmissionPolicies().List(ctx, sel) }},
		{kindClusterRoleBinding, func() (runtime.Object, error) { return rbac.ClusterRoleBindings().List(ctx, sel) }},
		{kindClusterRole, func() (runtime.Object, error) { return rbac.ClusterRoles().List(ctx, sel) }},
		{kindRoleBinding, func() (runtime.Object, error) { return rbac.RoleBindings(metav1.NamespaceAll).List(ctx, sel) }},
		{kindRole, func() (runtime.Object, error) { return rbac.Roles(metav1.NamespaceAll).List(ctx, sel) }},
	}
	for _, l := range lists {
		list, err := l.list()
		if err == nil {
			err = meta.EachListItem(list, func(o runtime.Object) error {
				m, err := meta.Accessor(o)
				if err == nil && m.GetNamespace() != u.c.namespace {
					out = append(out, routerObject{Kind: l.kind, Namespace: m.GetNamespace(), Name: m.GetName()})
				}
				return err
			})
		}
		if err != nil {
			return nil, fmt.Errorf("listing %ss labelled %s: %w", l.kind, partOfSelector, err)
		}
	}
	return out, nil
}

// delete removes one object; one already gone is fine, so a repeated or
// interrupted uninstall can simply be run again.
func (u *uninstaller) delete(ctx context.Context, o routerObject) error {
	c, adm, rbac := u.client, u.client.AdmissionregistrationV1(), u.client.RbacV1()
	opts := metav1.DeleteOptions{}
	var err error
	switch o.Kind {
	case kindMWC:
		err = adm.MutatingWebhookConfigurations().Delete(ctx, o.Name, opts)
	case kindVWC:
		err = adm.ValidatingWebhookConfigurations().Delete(ctx, o.Name, opts)
	case kindNamespace:
		err = c.CoreV1().Namespaces().Delete(ctx, o.Name, opts)
	case kindVAPBinding:
		err = adm.ValidatingAdmissionPolicyBindings().Delete(ctx, o.Name, opts)
	case kindVAP:
		err = adm.ValidatingAdmissionPolicies().Delete(ctx, o.Name, opts)
	case kindClusterRoleBinding:
		err = rbac.ClusterRoleBindings().Delete(ctx, o.Name, opts)
	case kindClusterRole:
		err = rbac.ClusterRoles().Delete(ctx, o.Name, opts)
	case kindRoleBinding:
		err = rbac.RoleBindings(o.Namespace).Delete(ctx, o.Name, opts)
	case kindRole:
		err = rbac.Roles(o.Namespace).Delete(ctx, o.Name, opts)
	default:
		return fmt.Errorf("unknown kind %s", o.Kind)
	}
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting %s: %w", o, err)
	}
	fmt.Fprintf(u.out, "  deleted %s\n", o)
	return nil
}

// patchNamespace applies a JSON merge patch to a namespace (null removes
// a key).
func patchNamespace(ctx context.Context, client kubernetes.Interface, name string, patch map[string]any) error {
	b, err := json.Marshal(patch)
	if err != nil {
		return err
	}
	if _, err := client.CoreV1().Namespaces().Patch(ctx, name, types.MergePatchType, b,
		metav1.PatchOptions{FieldManager: "canary-router-uninstall"}); err != nil {
		return fmt.Errorf("relabelling namespace %s: %w", name, err)
	}
	return nil
}

// Phases of the deletion (see uninstaller.run).
const (
	phaseWebhooks = iota
	phaseBindings
	phaseRest
	phases
)

// objectsByPhase groups objects by the phase that deletes them, keeping
// their order.
func objectsByPhase(objects []routerObject) [phases][]routerObject {
	var out [phases][]routerObject
	for _, o := range objects {
		p := phaseRest
		switch o.Kind {
		case kindMWC, kindVWC:
			p = phaseWebhooks
		case kindClusterRoleBinding, kindRoleBinding:
			p = phaseBindings
		}
		out[p] = append(out[p], o)
	}
	return out
}

// revokeTimeout bounds the wait for the API server's authorizer to see
// the bindings gone (its RBAC cache follows an informer: usually well
// under a second).
const revokeTimeout = 15 * time.Second

// routerServiceAccount is the router's ServiceAccount
// (deploy/base/serviceaccount.yaml).
const routerServiceAccount = "canary-router"

// waitRevoked waits until the API server denies the router's
// ServiceAccount to patch namespaces, so its namespace reconciler cannot
// relabel a namespace after the last relabelling pass. It only warns on a
// timeout or an error (another binding may grant the same right, or the
// caller may not create SubjectAccessReviews); the last pass still runs.
func (u *uninstaller) waitRevoked(ctx context.Context) {
	user := "system:serviceaccount:" + u.c.namespace + ":" + routerServiceAccount
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User:               user,
		Groups:             []string{"system:serviceaccounts", "system:serviceaccounts:" + u.c.namespace, "system:authenticated"},
		ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "patch", Resource: "namespaces"},
	}}
	var allowed bool
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, revokeTimeout, true, func(ctx context.Context) (bool, error) {
		res, err := u.client.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
		if err != nil {
			return false, err
		}
		allowed = res.Status.Allowed
		return !allowed, nil
	})
	if err != nil {
		fmt.Fprintf(u.errOut, "warning: %s may still patch namespaces (allowed: %v) after its bindings were deleted: %v\n", user, allowed, err)
		return
	}
	fmt.Fprintf(u.out, "  %s may no longer patch namespaces\n", user)
}

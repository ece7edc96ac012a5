package faults

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canary-router/canary-router/test/harness"
	"github.com/canary-router/canary-router/test/localrouter"
)

// webhookConfig names both webhook configurations, as deploy/ does.
const webhookConfig = localrouter.WebhookConfig

// registerWebhooks points the router's webhook configurations at r: the
// pod and namespace webhooks as deploy/ registers them (pods fail
// closed), and the policy ConfigMap validator (fails closed too). In
// self-managed mode the caBundle is left for r to fill in.
func registerWebhooks(ctx context.Context, r *router) error {
	adm := env.Cluster.Client.AdmissionregistrationV1()
	mwc := localrouter.LoopbackConfig(r.port, r.caBundle)
	cur, err := adm.MutatingWebhookConfigurations().Get(ctx, webhookConfig, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = adm.MutatingWebhookConfigurations().Create(ctx, mwc, metav1.CreateOptions{})
	case err == nil:
		mwc.ResourceVersion = cur.ResourceVersion
		_, err = adm.MutatingWebhookConfigurations().Update(ctx, mwc, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("registering the MutatingWebhookConfiguration: %w", err)
	}
	vwc := harness.PolicyValidator(r.url("/validate-policy"), r.caBundle)
	curV, err := adm.ValidatingWebhookConfigurations().Get(ctx, webhookConfig, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = adm.ValidatingWebhookConfigurations().Create(ctx, vwc, metav1.CreateOptions{})
	case err == nil:
		vwc.ResourceVersion = curV.ResourceVersion
		_, err = adm.ValidatingWebhookConfigurations().Update(ctx, vwc, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("registering the ValidatingWebhookConfiguration: %w", err)
	}
	return nil
}

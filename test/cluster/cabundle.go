package cluster

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
)

// WaitCABundles waits up to 30 s until every webhook of the Mutating- and
// ValidatingWebhookConfiguration named name carries a caBundle: with
// self-managed certificates the router writes it on its first pass, and
// the apiserver cannot call the router before.
func WaitCABundles(ctx context.Context, client kubernetes.Interface, name string) error {
	adm := client.AdmissionregistrationV1()
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		m, err := adm.MutatingWebhookConfigurations().Get(ctx, name, metav1.GetOptions{})
		if err != nil || len(m.Webhooks) == 0 {
			return false, nil
		}
		v, err := adm.ValidatingWebhookConfigurations().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		for _, wh := range m.Webhooks {
			if len(wh.ClientConfig.CABundle) == 0 {
				return false, nil
			}
		}
		for _, wh := range v.Webhooks {
			if len(wh.ClientConfig.CABundle) == 0 {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("caBundle never set on the webhook configurations %s: %w", name, err)
	}
	return nil
}

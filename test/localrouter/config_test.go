package localrouter

import "testing"

// TestLoopbackConfig: the shipped pod webhook, selectors and match
// conditions included, with only the address changed.
func TestLoopbackConfig(t *testing.T) {
	mwc := LoopbackConfig(8443, []byte("ca"))
	if mwc.Name != WebhookConfig || len(mwc.Webhooks) != 2 {
		t.Fatalf("config %s with %d webhooks", mwc.Name, len(mwc.Webhooks))
	}
	for _, wh := range mwc.Webhooks {
		want := map[string]string{
			"namespaces.canary-router.io": "https://127.0.0.1:8443/mutate-namespaces",
			"pods.canary-router.io":       "https://127.0.0.1:8443/mutate-pods",
		}[wh.Name]
		if wh.ClientConfig.URL == nil || *wh.ClientConfig.URL != want || wh.ClientConfig.Service != nil || string(wh.ClientConfig.CABundle) != "ca" {
			t.Errorf("%s: client config %+v, want url %s", wh.Name, wh.ClientConfig, want)
		}
		if wh.Name == "pods.canary-router.io" && (len(wh.MatchConditions) == 0 || wh.NamespaceSelector == nil) {
			t.Errorf("pod webhook lost the manifests' selector or match conditions: %+v", wh)
		}
	}
}

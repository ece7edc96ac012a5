package localrouter

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	admissionregv1 "k8s.io/api/admissionregistration/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/canary-router/canary-router/test/cluster"
)

// LoopbackConfig is the router's MutatingWebhookConfiguration exactly as
// deploy/base/webhooks.yaml registers it (name canary-router, so it sorts
// before every istio-* config; a namespace webhook that fails open; a pod
// webhook that fails closed, scoped to opted-in namespaces, with the
// manifests' match conditions), pointed at a router listening on
// 127.0.0.1:port. Suites that run the router without applying deploy/ use
// it; read from the manifests, it cannot drift from what is shipped. It
// panics when the manifest cannot be read: a broken checkout, not a test
// outcome.
func LoopbackConfig(port int, caBundle []byte) *admissionregv1.MutatingWebhookConfiguration {
	mwc, err := baseWebhooks()
	if err != nil {
		panic(fmt.Sprintf("localrouter: %v", err))
	}
	for i := range mwc.Webhooks {
		wh := &mwc.Webhooks[i]
		path := ""
		if svc := wh.ClientConfig.Service; svc != nil && svc.Path != nil {
			path = *svc.Path
		}
		url := fmt.Sprintf("https://127.0.0.1:%d%s", port, path)
		wh.ClientConfig = admissionregv1.WebhookClientConfig{URL: &url, CABundle: caBundle}
	}
	return mwc
}

// baseWebhooks reads the MutatingWebhookConfiguration of
// deploy/base/webhooks.yaml.
func baseWebhooks() (*admissionregv1.MutatingWebhookConfiguration, error) {
	root, err := cluster.RepoRoot()
	if err != nil {
		return nil, err
	}
	path := filepath.Join(root, "deploy", "base", "webhooks.yaml")
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(raw)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: no MutatingWebhookConfiguration %s", path, WebhookConfig)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(doc, nil, nil)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if m, ok := obj.(*admissionregv1.MutatingWebhookConfiguration); ok && m.Name == WebhookConfig {
			return m, nil
		}
	}
}

package cluster

import (
	"encoding/base64"
	"fmt"
	"os"

	"k8s.io/client-go/rest"
)

const contextName = "canary-router"

// writeKubeconfig writes a kubeconfig with the certs embedded, so the file
// stays valid when copied out of the cluster dir (e.g. for a demo). It is
// templated rather than built with clientcmd, which would pull spf13/pflag
// into the module for four fields.
func writeKubeconfig(path, server string, caPEM, certPEM, keyPEM []byte) error {
	b64 := base64.StdEncoding.EncodeToString
	data := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: %[1]s
  cluster:
    server: %[2]s
    certificate-authority-data: %[3]s
users:
- name: %[1]s
  user:
    client-certificate-data: %[4]s
    client-key-data: %[5]s
contexts:
- name: %[1]s
  context:
    cluster: %[1]s
    user: %[1]s
    namespace: default
current-context: %[1]s
`, contextName, server, b64(caPEM), b64(certPEM), b64(keyPEM))
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	return nil
}

// restConfig returns the admin client config for server.
func restConfig(server string, caPEM, certPEM, keyPEM []byte) *rest.Config {
	return &rest.Config{
		Host: server,
		TLSClientConfig: rest.TLSClientConfig{
			CAData:   caPEM,
			CertData: certPEM,
			KeyData:  keyPEM,
		},
		// client-go's default of 5 QPS would make load tests measure the
		// client's rate limiter instead of the webhook.
		QPS:   200,
		Burst: 400,
	}
}

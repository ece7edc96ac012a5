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

// WriteTokenKubeconfig writes to path a kubeconfig for this cluster that
// authenticates with a bearer token only, as a ServiceAccount in a pod
// does; namespace, when given, is its context's default.
func (c *Cluster) WriteTokenKubeconfig(path, user, token, namespace string) error {
	ns := ""
	if namespace != "" {
		ns = ", namespace: " + namespace
	}
	data := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: %s
  user:
    token: %s
contexts:
- name: local
  context: {cluster: local, user: %s%s}
current-context: local
`, c.Config.Host, base64.StdEncoding.EncodeToString(c.CA.CertPEM), user, token, user, ns)
	return os.WriteFile(path, []byte(data), 0o600)
}

// WriteUserKubeconfig writes to path a kubeconfig for this cluster that
// authenticates as user, in groups, with a client certificate the
// cluster CA issues: a distinct identity kube-apiserver's audit log can
// tell apart (the load tool's scale run gives each router replica one).
func (c *Cluster) WriteUserKubeconfig(path, user string, groups []string) error {
	certPEM, keyPEM, err := c.CA.IssueClient(user, groups)
	if err != nil {
		return err
	}
	return writeKubeconfig(path, c.Config.Host, c.CA.CertPEM, certPEM, keyPEM)
}

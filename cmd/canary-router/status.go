package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/pflag"
)

// statusTimeout bounds the whole read of the cluster.
const statusTimeout = 2 * time.Minute

// statusConfig holds the flags of canary-router status.
type statusConfig struct {
	kubeconfig, kubeContext string
	namespace, configMap    string
	output                  string
}

func (c *statusConfig) bind(fs *pflag.FlagSet) {
	bindKubeFlags(fs, &c.kubeconfig, &c.kubeContext)
	fs.StringVar(&c.namespace, "namespace", "canary-router-system", "namespace of the policy ConfigMap")
	fs.StringVar(&c.configMap, "policy-configmap", "canary-router-policy", "policy ConfigMap name (key policy.yaml)")
	bindOutput(fs, &c.output, outputTable, outputJSON, outputYAML)
}

func (c *statusConfig) check(args []string) error { return noArgs(args) }

// run prints the rollout as the cluster shows it: per revision the
// policy's target share, the pods routed to it and injected by it, the
// mismatches, and the namespaces by revision. It needs only read access
// (get the policy ConfigMap; list pods, namespaces and
// MutatingWebhookConfigurations), not the router's ServiceAccount.
func (c *statusConfig) run(ctx context.Context, _ []string, stdout, stderr io.Writer) int {
	client, meta, err := statusClients(c.kubeconfig, c.kubeContext)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFailure
	}
	ctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	snap, err := readCluster(ctx, client, meta, c.namespace, c.configMap)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFailure
	}
	report := buildStatus(snap)
	if c.output != outputTable {
		if err := writeDocument(stdout, c.output, report); err != nil {
			fmt.Fprintln(stderr, err)
			return exitFailure
		}
		return exitOK
	}
	writeStatusText(stdout, report)
	writeMigrationSection(ctx, client, c.namespace, stdout)
	return exitOK
}

package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/canary-router/canary-router/cmd/canary-router/cmdutil"
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

func (c *statusConfig) Bind(fs *pflag.FlagSet) {
	cmdutil.BindKubeFlags(fs, &c.kubeconfig, &c.kubeContext)
	fs.StringVar(&c.namespace, "namespace", "canary-router-system", "namespace of the policy ConfigMap")
	fs.StringVar(&c.configMap, "policy-configmap", "canary-router-policy", "policy ConfigMap name (key policy.yaml)")
	cmdutil.BindOutput(fs, &c.output, cmdutil.OutputTable, cmdutil.OutputJSON, cmdutil.OutputYAML)
}

func (c *statusConfig) Check(args []string) error { return cmdutil.NoArgs(args) }

// run prints the rollout as the cluster shows it: per revision the
// policy's target share, the pods routed to it and injected by it, the
// mismatches, and the namespaces by revision. It needs only read access
// (get the policy ConfigMap; list pods, namespaces and
// MutatingWebhookConfigurations), not the router's ServiceAccount.
func (c *statusConfig) Run(ctx context.Context, _ []string, stdout, stderr io.Writer) int {
	client, meta, err := statusClients(c.kubeconfig, c.kubeContext)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return cmdutil.ExitFailure
	}
	ctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	snap, err := readCluster(ctx, client, meta, c.namespace, c.configMap)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return cmdutil.ExitFailure
	}
	report := buildStatus(snap)
	if c.output != cmdutil.OutputTable {
		if err := cmdutil.WriteDocument(stdout, c.output, report); err != nil {
			fmt.Fprintln(stderr, err)
			return cmdutil.ExitFailure
		}
		return cmdutil.ExitOK
	}
	writeStatusText(stdout, report)
	writeMigrationSection(ctx, client, c.namespace, stdout)
	return cmdutil.ExitOK
}

package statuscmd

import (
	"context"
	"fmt"
	"io"

	"github.com/canary-router/canary-router/cmd/canary-router/cmdutil"
	"github.com/canary-router/canary-router/cmd/canary-router/report"
	"github.com/spf13/pflag"
)

// Options holds the flags of canary-router status.
type Options struct {
	kubeconfig, kubeContext string
	namespace, configMap    string
	output                  string
}

func (c *Options) Bind(fs *pflag.FlagSet) {
	cmdutil.BindKubeFlags(fs, &c.kubeconfig, &c.kubeContext)
	fs.StringVar(&c.namespace, "namespace", "canary-router-system", "namespace of the policy ConfigMap")
	fs.StringVar(&c.configMap, "policy-configmap", "canary-router-policy", "policy ConfigMap name (key policy.yaml)")
	cmdutil.BindOutput(fs, &c.output, cmdutil.OutputTable, cmdutil.OutputJSON, cmdutil.OutputYAML)
}

func (c *Options) Check(args []string) error { return cmdutil.NoArgs(args) }

// run prints the rollout as the cluster shows it: per revision the
// policy's target share, the pods routed to it and injected by it, the
// mismatches, and the namespaces by revision. It needs only read access
// (get the policy ConfigMap; list pods, namespaces and
// MutatingWebhookConfigurations), not the router's ServiceAccount.
func (c *Options) Run(ctx context.Context, _ []string, stdout, stderr io.Writer) int {
	client, meta, err := report.StatusClients(c.kubeconfig, c.kubeContext)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return cmdutil.ExitFailure
	}
	ctx, cancel := context.WithTimeout(ctx, cmdutil.OpTimeout)
	defer cancel()
	snap, err := report.ReadCluster(ctx, client, meta, c.namespace, c.configMap)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return cmdutil.ExitFailure
	}
	rep := report.BuildStatus(snap)
	if c.output != cmdutil.OutputTable {
		if err := cmdutil.WriteDocument(stdout, c.output, rep); err != nil {
			fmt.Fprintln(stderr, err)
			return cmdutil.ExitFailure
		}
		return cmdutil.ExitOK
	}
	report.WriteStatusText(stdout, rep)
	report.WriteMigrationSection(ctx, client, c.namespace, stdout)
	return cmdutil.ExitOK
}

package cmdutil

import (
	"fmt"
	"slices"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// RestConfig loads the Kubernetes client configuration of serve: the
// kubeconfig at path when given (local runs, tests, the demo), in context
// kubeContext ("" is its current one), else the in-cluster
// ServiceAccount. $KUBECONFIG is ignored on purpose: a router pod must
// not talk to another cluster because its environment says so.
func RestConfig(path, kubeContext string) (*rest.Config, error) {
	var cfg *rest.Config
	var err error
	if path == "" {
		cfg, err = rest.InClusterConfig()
	} else {
		cfg, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
			&clientcmd.ClientConfigLoadingRules{ExplicitPath: path},
			&clientcmd.ConfigOverrides{CurrentContext: kubeContext}).ClientConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("kubernetes client configuration: %w", err)
	}
	cfg.UserAgent = "canary-router/" + Version
	// The router's own calls are few (informers, a patch now and then);
	// client-go's default 5 QPS would still throttle a start-up burst.
	cfg.QPS, cfg.Burst = 50, 100
	return cfg, nil
}

// KubeClients bundles the clients the router's components share, built
// once from one configuration.
type KubeClients struct {
	Config *rest.Config
	Client kubernetes.Interface
}

// NewKubeClients builds the clients from RestConfig.
func NewKubeClients(path, kubeContext string) (*KubeClients, error) {
	cfg, err := RestConfig(path, kubeContext)
	if err != nil {
		return nil, err
	}
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return &KubeClients{Config: cfg, Client: c}, nil
}

// BindKubeFlags binds kubectl's --kubeconfig and --context, for the
// commands an operator runs against a cluster (OperatorClients).
func BindKubeFlags(fs *pflag.FlagSet, kubeconfig, kubeContext *string) {
	fs.StringVar(kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, as kubectl)")
	fs.StringVar(kubeContext, "context", "", "kubeconfig context (default: the current context)")
}

// OperatorClients loads a kubeconfig the way kubectl does, for the
// commands an operator runs (status, init, uninstall): --kubeconfig, else
// $KUBECONFIG, else ~/.kube/config, else the in-cluster ServiceAccount;
// kubeContext picks a context ("" is the current one).
func OperatorClients(kubeconfig, kubeContext, command string) (*KubeClients, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules,
		&clientcmd.ConfigOverrides{CurrentContext: kubeContext}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubernetes client configuration: %w", err)
	}
	cfg = rest.CopyConfig(cfg)
	cfg.UserAgent = "canary-router-" + command + "/" + Version
	cfg.QPS, cfg.Burst = 20, 40
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return &KubeClients{Config: cfg, Client: c}, nil
}

// CompleteContexts lists the contexts of the kubeconfig that --kubeconfig
// or $KUBECONFIG names, as kubectl completes --context.
func CompleteContexts(c *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if f := c.Flags().Lookup("kubeconfig"); f != nil {
		rules.ExplicitPath = f.Value.String()
	}
	cfg, err := rules.Load()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var names []string
	for n := range cfg.Contexts {
		names = append(names, n)
	}
	slices.Sort(names)
	return names, cobra.ShellCompDirectiveNoFileComp
}

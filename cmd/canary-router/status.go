package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"
)

// statusTimeout bounds the whole read of the cluster.
const statusTimeout = 2 * time.Minute

// statusCmd prints the rollout as the cluster shows it: per revision the
// policy's target share, the pods routed to it and injected by it, the
// mismatches, and the namespaces by revision. It needs only read access
// (get the policy ConfigMap; list pods, namespaces and
// MutatingWebhookConfigurations), not the router's ServiceAccount.
func statusCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, as kubectl)")
	kubeContext := fs.String("context", "", "kubeconfig context (default: the current context)")
	namespace := fs.String("namespace", "canary-router-system", "namespace of the policy ConfigMap")
	configMap := fs.String("policy-configmap", "canary-router-policy", "policy ConfigMap name (key policy.yaml)")
	output := fs.String("o", "table", "table or json")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if (*output != "table" && *output != "json") || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: canary-router status [--kubeconfig FILE] [--context NAME] [--namespace NS] [--policy-configmap NAME] [-o table|json]")
		return 2
	}
	client, meta, err := statusClients(*kubeconfig, *kubeContext)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	ctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	snap, err := readCluster(ctx, client, meta, *namespace, *configMap)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	report := buildStatus(snap)
	if *output == "json" {
		if err := writeStatusJSON(stdout, report); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		return 0
	}
	writeStatusText(stdout, report)
	return 0
}

package main

import (
	"fmt"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// restConfig loads the Kubernetes client configuration: the kubeconfig at
// path when given (local runs, tests, the demo), else the in-cluster
// ServiceAccount.
func restConfig(path string) (*rest.Config, error) {
	var cfg *rest.Config
	var err error
	if path == "" {
		cfg, err = rest.InClusterConfig()
	} else {
		cfg, err = clientcmd.BuildConfigFromFlags("", path)
	}
	if err != nil {
		return nil, fmt.Errorf("kubernetes client configuration: %w", err)
	}
	cfg.UserAgent = "canary-router/" + version
	// The router's own calls are few (informers, a patch now and then);
	// client-go's default 5 QPS would still throttle a start-up burst.
	cfg.QPS, cfg.Burst = 50, 100
	return cfg, nil
}

// kubeClients bundles the clients the router's components share, built
// once from one configuration.
type kubeClients struct {
	config *rest.Config
	client kubernetes.Interface
}

func newKubeClients(path string) (*kubeClients, error) {
	cfg, err := restConfig(path)
	if err != nil {
		return nil, err
	}
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return &kubeClients{config: cfg, client: c}, nil
}

// operatorClients loads a kubeconfig the way kubectl does, for the
// commands an operator runs (init, uninstall): --kubeconfig, else
// $KUBECONFIG, else ~/.kube/config, else the in-cluster ServiceAccount;
// kubeContext picks a context ("" is the current one).
func operatorClients(kubeconfig, kubeContext, command string) (*kubeClients, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules,
		&clientcmd.ConfigOverrides{CurrentContext: kubeContext}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubernetes client configuration: %w", err)
	}
	cfg = rest.CopyConfig(cfg)
	cfg.UserAgent = "canary-router-" + command + "/" + version
	cfg.QPS, cfg.Burst = 20, 40
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return &kubeClients{config: cfg, client: c}, nil
}

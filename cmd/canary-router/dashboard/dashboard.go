package dashboard

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"runtime"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/client-go/metadata"

	"github.com/canary-router/canary-router/cmd/canary-router/cmdutil"
	"github.com/canary-router/canary-router/cmd/canary-router/report"
)

// Options holds the flags of canary-router dashboard, which
// serves the rollout's page on this machine with the user's kubeconfig,
// as `kubectl argo rollouts dashboard` does.
type Options struct {
	kubeconfig, kubeContext string
	namespace, configMap    string
	address                 string
	port                    int
	noBrowser               bool
}

func (c *Options) Bind(fs *pflag.FlagSet) {
	cmdutil.BindKubeFlags(fs, &c.kubeconfig, &c.kubeContext)
	fs.StringVar(&c.namespace, "namespace", "canary-router-system", "the router's namespace, where the policy and status objects are")
	fs.StringVar(&c.configMap, "policy-configmap", "canary-router-policy", "policy ConfigMap name (key policy.yaml)")
	fs.StringVar(&c.address, "address", "127.0.0.1", "address to listen on; anything but loopback lets others act with your credentials")
	fs.IntVar(&c.port, "port", 3100, "port to listen on (0: any free port)")
	fs.BoolVar(&c.noBrowser, "no-browser", false, "do not open the page in a browser")
}

func (c *Options) Check(args []string) error {
	if c.port < 0 || c.port > 65535 {
		return fmt.Errorf("--port must be 0-65535, got %d", c.port)
	}
	return cmdutil.NoArgs(args)
}

// dashboardPoll is how often the page reads /api/state; it is in the
// page (assets/app.js) and said here for the help text only.
const dashboardPoll = 2 * time.Second

func (c *Options) Run(ctx context.Context, _ []string, stdout, stderr io.Writer) int {
	kube, err := cmdutil.OperatorClients(c.kubeconfig, c.kubeContext, "dashboard")
	if err != nil {
		fmt.Fprintln(stderr, err)
		return cmdutil.ExitFailure
	}
	meta, err := metadata.NewForConfig(kube.Config)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return cmdutil.ExitFailure
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(c.address, strconv.Itoa(c.port)))
	if err != nil {
		fmt.Fprintf(stderr, "canary-router dashboard: %v\n", err)
		return cmdutil.ExitFailure
	}
	port := ln.Addr().(*net.TCPAddr).Port
	backend := newDashboardBackend(kube.Client, meta, c.namespace, c.configMap)
	srv := &http.Server{
		Handler: Handler(ServerOptions{Backend: backend, Actions: dashboardActions(),
			Hosts: dashboardHosts(c.address, port), Timeout: cmdutil.OpTimeout}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	url := "http://" + net.JoinHostPort(c.address, strconv.Itoa(port)) + "/"
	fmt.Fprintf(stdout, "canary-router dashboard at %s (Ctrl-C to stop)\n", url)
	if !c.noBrowser {
		if err := openBrowser(url); err != nil {
			fmt.Fprintf(stderr, "could not open a browser (%v): open %s yourself\n", err, url)
		}
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		fmt.Fprintf(stderr, "canary-router dashboard: %v\n", err)
		return cmdutil.ExitFailure
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		fmt.Fprintf(stderr, "canary-router dashboard: %v\n", err)
	}
	return cmdutil.ExitOK
}

// dashboardActions are the page's buttons: the rollout commands that
// write (status only reads).
func dashboardActions() []string {
	var out []string
	for _, a := range report.RolloutActions {
		if a.Name != "status" {
			out = append(out, a.Name)
		}
	}
	return out
}

// dashboardHosts are the Host headers the server answers: on loopback its
// own names only (a rebinding attack's host is refused); bound elsewhere
// the operator chose to be reached by other names, so any.
func dashboardHosts(address string, port int) []string {
	ip := net.ParseIP(address)
	if address != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil
	}
	p := strconv.Itoa(port)
	return []string{net.JoinHostPort(address, p), net.JoinHostPort("localhost", p), net.JoinHostPort("127.0.0.1", p), net.JoinHostPort("::1", p)}
}

// openBrowser opens url the way the desktop does; it does not wait for
// the browser.
func openBrowser(url string) error {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.Command("open", url)
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", url)
	default:
		cmd = exec.Command("xdg-open", url)
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() { _ = cmd.Wait() }()
	return nil
}

// dashboardEntry is the dashboard command for the registry.
// Command is the cobra command of `canary-router dashboard`, for the
// command tree; Options runs it.
func Command() *cobra.Command {
	return &cobra.Command{Use: "dashboard",
		Short:   "Serve a live page of the rollout on this machine, with pause|resume|promote|abort|retry buttons",
		Long:    fmt.Sprintf("Serve a live page of the self-driving rollout with your kubeconfig: its timeline, weights against the plan, gates, the migration's batches and pods per revision by namespace and workload. The page reads the cluster every %s; its buttons act with your own RBAC, and those you may not use are disabled with the reason.", dashboardPoll),
		Example: "  canary-router dashboard\n  canary-router dashboard --port 3101 --no-browser"}
}

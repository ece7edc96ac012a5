// Package simulate is `canary-router simulate`: where a policy sends a
// synthetic population of namespaces, workloads and pods, offline.
package simulate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/pflag"

	"github.com/canary-router/canary-router/cmd/canary-router/cmdutil"
	"github.com/canary-router/canary-router/policy"
	"github.com/canary-router/canary-router/policy/simulate"
)

// Output is the -o json|yaml document: every unit with its revision.
type Output struct {
	Policy  string          `json:"policy"`
	Result  simulate.Result `json:"result"`
	Compare *Compared       `json:"compare,omitempty"`
}

type Compared struct {
	Policy string          `json:"policy"`
	Result simulate.Result `json:"result"`
	Moves  []simulate.Move `json:"moves"`
}

// Options holds the flags of canary-router simulate.
type Options struct {
	policyFile, compare, workloads    string
	namespaces, deployments, replicas int
	output                            string
}

func (c *Options) Bind(fs *pflag.FlagSet) {
	fs.StringVar(&c.policyFile, "policy", "", "policy file to preview (required)")
	fs.StringVar(&c.compare, "compare", "", "a second policy file: show what changing from --policy to it would move")
	fs.StringVar(&c.workloads, "workloads", "", "workload list (YAML: namespace, kind, name, replicas); default: a generated fleet")
	fs.IntVar(&c.namespaces, "namespaces", 10, "generated fleet: namespaces")
	fs.IntVar(&c.deployments, "deployments", 0, "generated fleet: Deployments spread over the namespaces (0: one per namespace)")
	fs.IntVar(&c.replicas, "replicas", 3, "generated fleet: replicas per Deployment")
	cmdutil.BindOutput(fs, &c.output, cmdutil.OutputTable, cmdutil.OutputJSON, cmdutil.OutputYAML)
}

func (c *Options) Check(args []string) error {
	if c.policyFile == "" {
		return errors.New("--policy: required")
	}
	if c.workloads == "" && (c.namespaces < 1 || c.replicas < 1 || c.deployments < 0) {
		return fmt.Errorf("--namespaces %d, --replicas %d, --deployments %d: the generated fleet needs at least 1 namespace and 1 replica, and 0 or more Deployments",
			c.namespaces, c.replicas, c.deployments)
	}
	return cmdutil.NoArgs(args)
}

// run previews a policy offline: which units go where and, with
// --compare, what a change would move.
func (c *Options) Run(_ context.Context, _ []string, stdout, stderr io.Writer) int {
	units, err := loadUnits(c.workloads, c.namespaces, c.deployments, c.replicas)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return cmdutil.ExitUsage
	}
	p, err := loadPolicy(c.policyFile)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return cmdutil.ExitFailure
	}
	out := Output{Policy: c.policyFile, Result: simulate.Run(p, units)}
	if c.compare != "" {
		q, err := loadPolicy(c.compare)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return cmdutil.ExitFailure
		}
		res := simulate.Run(q, units)
		out.Compare = &Compared{Policy: c.compare, Result: res, Moves: simulate.Compare(out.Result, res)}
	}
	if c.output != cmdutil.OutputTable {
		if err := cmdutil.WriteDocument(stdout, c.output, out); err != nil {
			fmt.Fprintln(stderr, err)
			return cmdutil.ExitFailure
		}
		return cmdutil.ExitOK
	}
	printSimulation(stdout, out, len(units))
	return cmdutil.ExitOK
}

func loadUnits(path string, namespaces, deployments, replicas int) ([]simulate.Unit, error) {
	if path == "" {
		return simulate.Generate(namespaces, deployments, replicas)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return simulate.ParseUnits(data)
}

// loadPolicy reads and validates a policy file, naming every bad field.
func loadPolicy(path string) (*policy.Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	doc, _, err := policy.Document(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	p, err := policy.Parse(doc)
	var verr policy.ValidationError
	if errors.As(err, &verr) {
		lines := make([]string, len(verr))
		for i, fe := range verr {
			lines[i] = path + ": " + fe.Error()
		}
		return nil, errors.New(strings.Join(lines, "\n"))
	}
	return p, err
}

func printSimulation(w io.Writer, out Output, workloads int) {
	r := out.Result
	fmt.Fprintf(w, "policy %s: granularity %s, %d workloads, %d pods\n\n", out.Policy, r.Granularity, workloads, r.Pods)
	printTotals(w, r)
	if out.Compare == nil {
		return
	}
	c := out.Compare
	fmt.Fprintf(w, "\nafter changing to %s (granularity %s):\n\n", c.Policy, c.Result.Granularity)
	printTotals(w, c.Result)
	fmt.Fprintln(w)
	if len(c.Moves) == 0 {
		fmt.Fprintln(w, "nothing moves")
		return
	}
	unit := unitName(r.Granularity)
	for _, m := range c.Moves {
		fmt.Fprintf(w, "moves %s -> %s: %d %s, %d pods\n", m.From, m.To, m.Units, unit, m.Pods)
	}
}

func printTotals(w io.Writer, r simulate.Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "REVISION\tTARGET\t%s\tPODS\tPOD SHARE\t\n", strings.ToUpper(unitName(r.Granularity)))
	for _, t := range r.Totals {
		fmt.Fprintf(tw, "%s\t%.1f%%\t%d\t%d\t%.1f%%\t%s\n", t.Revision, t.Target*100, t.Units, t.Pods, t.Share*100, cmdutil.Bar(t.Share, 20))
	}
	_ = tw.Flush()
}

func unitName(g policy.Granularity) string {
	switch g {
	case policy.GranularityNamespace:
		return "namespaces"
	case policy.GranularityWorkload:
		return "workloads"
	}
	return "pods"
}

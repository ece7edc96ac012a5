package initpolicy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/canary-router/canary-router/cmd/canary-router/cmdutil"
	"github.com/canary-router/canary-router/controller/migrate"
	"github.com/canary-router/canary-router/istio"
	"github.com/canary-router/canary-router/policy"
)

// Options holds the flags of canary-router init.
type Options struct {
	kubeconfig, kubeContext string
	namespace, configMap    string
	istioNamespace          string
	granularity             string
	revision                string
	output                  string
	apply                   bool
}

func (c *Options) Bind(fs *pflag.FlagSet) {
	cmdutil.BindKubeFlags(fs, &c.kubeconfig, &c.kubeContext)
	fs.StringVar(&c.namespace, "namespace", "canary-router-system", "namespace of the policy ConfigMap")
	fs.StringVar(&c.configMap, "policy-configmap", "canary-router-policy", "policy ConfigMap name (key policy.yaml)")
	fs.StringVar(&c.istioNamespace, "istio-namespace", "istio-system", "namespace of the istiod Services (excluded from routing; istiod health is read there)")
	fs.StringVar(&c.granularity, "granularity", string(policy.GranularityWorkload), "namespace, workload or pod (namespace needs the namespace-granularity overlay)")
	fs.StringVar(&c.revision, "revision", "", "the revision or tag to send everything to, when Istio has several revisions and no default")
	cmdutil.BindOutput(fs, &c.output, cmdutil.OutputYAML, cmdutil.OutputJSON)
	fs.BoolVar(&c.apply, "apply", false, "create the policy ConfigMap when it does not exist (never overwrites one)")
}

func (c *Options) Check(args []string) error {
	switch policy.Granularity(c.granularity) {
	case policy.GranularityNamespace, policy.GranularityWorkload, policy.GranularityPod:
	default:
		return fmt.Errorf("--granularity %q: must be namespace, workload or pod", c.granularity)
	}
	return cmdutil.NoArgs(args)
}

// run prints a first policy derived from the live Istio revisions and
// tags, one that keeps every workload on the revision Istio injects it
// with today; with --apply it creates the policy ConfigMap, and only when
// there is none, so it never changes a policy in force.
func (c *Options) Run(ctx context.Context, _ []string, stdout, stderr io.Writer) int {
	kube, err := cmdutil.OperatorClients(c.kubeconfig, c.kubeContext, "init")
	if err != nil {
		fmt.Fprintln(stderr, err)
		return cmdutil.ExitFailure
	}
	ctx, cancel := context.WithTimeout(ctx, cmdutil.OpTimeout)
	defer cancel()
	if err := runInit(ctx, kube.Client, *c, stdout, stderr); err != nil {
		fmt.Fprintln(stderr, "canary-router init:", err)
		return cmdutil.ExitFailure
	}
	return cmdutil.ExitOK
}

func runInit(ctx context.Context, client kubernetes.Interface, c Options, stdout, stderr io.Writer) error {
	ref := c.namespace + "/" + c.configMap
	if c.apply {
		// Checked first: an existing policy is the operator's, in force or
		// about to be, and nothing here may replace it.
		_, err := client.CoreV1().ConfigMaps(c.namespace).Get(ctx, c.configMap, metav1.GetOptions{})
		if err == nil {
			fmt.Fprintf(stdout, "ConfigMap %s already exists: left unchanged, the policy in force stays (edit it with kubectl -n %s edit configmap %s)\n",
				ref, c.namespace, c.configMap)
			return nil
		}
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("reading ConfigMap %s: %w", ref, err)
		}
	}
	state, warn, err := istio.Read(ctx, client, c.istioNamespace, cmdutil.WebhookConfigName)
	if err != nil {
		return err
	}
	if warn != "" {
		fmt.Fprintln(stderr, "warning:", warn)
	}
	var pods map[string]int
	if c.revision == "" && len(state.Revisions()) > 1 {
		// Only needed for the suggestion when several revisions leave no
		// choice; a failed count only loses the suggestion.
		if pods, err = injectedPods(ctx, client); err != nil {
			fmt.Fprintln(stderr, "warning: counting running pods by injecting revision:", err)
		}
	}
	s, err := chooseStarter(state, c.revision, pods)
	if err != nil {
		return err
	}
	if st := state.Target(s.target); !st.Available() && st.Cause != istio.CauseUnknown && warn == "" {
		fmt.Fprintf(stderr, "warning: %s: pods routed to it are refused until its istiod is ready\n", st.Detail)
	}
	doc := starterDoc(s, policy.Granularity(c.granularity), c.istioNamespace)
	if _, err := policy.Parse([]byte(doc)); err != nil {
		return fmt.Errorf("the generated policy is invalid (a bug): %w", err)
	}
	cm := &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Name: c.configMap, Namespace: c.namespace},
		Data:       map[string]string{"policy.yaml": doc},
	}
	if c.apply {
		_, err := client.CoreV1().ConfigMaps(c.namespace).Create(ctx, cm, metav1.CreateOptions{FieldManager: "canary-router-init"})
		switch {
		case apierrors.IsAlreadyExists(err):
			fmt.Fprintf(stdout, "ConfigMap %s already exists: left unchanged, the policy in force stays\n", ref)
			return nil
		case apierrors.IsNotFound(err):
			return fmt.Errorf("namespace %s not found: install the router first (kubectl apply -f deploy/install.yaml)", c.namespace)
		case err != nil:
			return fmt.Errorf("creating ConfigMap %s: %w", ref, err)
		}
		fmt.Fprintf(stderr, "configmap/%s created in %s: every target goes to %s (%s)\n", c.configMap, c.namespace, s.target, s.why)
	}
	return writeConfigMap(stdout, cm, c.output)
}

// starter is the first policy's single target and why it was chosen.
type starter struct {
	target string
	why    string
}

// chooseStarter picks the target of a first policy that keeps every
// workload where Istio injects it today:
//   - --revision, when given, if Istio knows it as a revision or tag;
//   - the default revision tag, else the default revision: what injects
//     namespaces labelled istio-injection=enabled today;
//   - the only revision, when there is one;
//   - otherwise no choice: the operator must name one.
//
// pods counts running workload pods by the revision that injected them;
// it only shapes the suggestion when there is no choice.
func chooseStarter(state *istio.State, revision string, pods map[string]int) (starter, error) {
	revs, tags := state.Revisions(), state.Tags()
	if revision != "" {
		if st := state.Target(revision); st.Cause == istio.CauseNotFound {
			return starter{}, fmt.Errorf("--revision %s: %s; known: %s", revision, st.Detail, describeRevisions(revs, tags))
		}
		return starter{target: revision, why: "chosen with --revision"}, nil
	}
	if rev, ok := tags[istio.Default]; ok {
		return starter{target: istio.Default, why: "Istio's default revision tag, pointing to revision " + rev +
			"; it injects namespaces labelled istio-injection=enabled today"}, nil
	}
	for _, r := range revs {
		if r == istio.Default {
			return starter{target: istio.Default, why: "Istio's default revision (an install without --revision); it injects namespaces labelled istio-injection=enabled today"}, nil
		}
	}
	switch len(revs) {
	case 0:
		return starter{}, errors.New("no Istio revision found: no MutatingWebhookConfiguration is labelled istio.io/rev. Install Istio first")
	case 1:
		return starter{target: revs[0], why: "the only Istio revision"}, nil
	}
	return starter{}, fmt.Errorf("Istio has several revisions and neither a default revision nor a %q revision tag: %s. "+
		"Name the one your workloads should stay on with --revision%s", istio.Default, describeRevisions(revs, tags), suggestRevision(revs, pods))
}

// suggestRevision names the revision that injects most running workload
// pods today, with the counts, so the suggestion keeps the most workloads
// where they are; never one picked by name order (that may well be the
// new revision, and copying the command would route everything to it).
// No pods, a tie or no count: no revision is suggested.
func suggestRevision(revs []string, pods map[string]int) string {
	best, n, total, tie := "", 0, 0, false
	for _, r := range revs {
		c := pods[r]
		total += c
		switch {
		case c > n:
			best, n, tie = r, c, false
		case c == n && c > 0:
			tie = true
		}
	}
	if best == "" || tie {
		var counts []string
		for _, r := range revs {
			counts = append(counts, fmt.Sprintf("%s: %d", r, pods[r]))
		}
		why := "no running workload pod is injected by any of them"
		if tie {
			why = "two revisions inject equally many running workload pods (" + strings.Join(counts, ", ") + ")"
		} else if pods == nil {
			why = "the running pods could not be counted"
		}
		return fmt.Sprintf(" (%s, so none is suggested): canary-router init --revision <revision>", why)
	}
	return fmt.Sprintf(", most likely %s, which injects %d of the %d running workload pods injected by these revisions: canary-router init --revision %s "+
		"(or create the tag first: istioctl tag set default --revision %s)", best, n, total, best, best)
}

// injectedPods counts running workload pods by the revision that
// injected them (migrate.RecordOf: Istio's own record on the pod), in
// pages so a large cluster is not read in one answer.
func injectedPods(ctx context.Context, client kubernetes.Interface) (map[string]int, error) {
	out := map[string]int{}
	opts := metav1.ListOptions{FieldSelector: "status.phase=Running", Limit: 500}
	for {
		list, err := client.CoreV1().Pods("").List(ctx, opts)
		if err != nil {
			return nil, err
		}
		for i := range list.Items {
			if rec, ok := migrate.RecordOf(&list.Items[i]); ok && rec.Injected != "" {
				out[rec.Injected]++
			}
		}
		if opts.Continue = list.Continue; opts.Continue == "" {
			return out, nil
		}
	}
}

// describeRevisions lists revisions and tags for a message.
func describeRevisions(revs []string, tags map[string]string) string {
	s := "revisions " + strings.Join(revs, ", ")
	if len(revs) == 0 {
		s = "no revisions"
	}
	if len(tags) > 0 {
		var ts []string
		for _, t := range sortedTagNames(tags) {
			ts = append(ts, t+" -> "+tags[t])
		}
		s += "; tags " + strings.Join(ts, ", ")
	}
	return s
}

// sortedTagNames returns the tag names in order.
func sortedTagNames(tags map[string]string) []string { return slices.Sorted(maps.Keys(tags)) }

// starterDoc renders the first policy with comments an operator can
// follow to start a canary.
func starterDoc(s starter, g policy.Granularity, istioNamespace string) string {
	return fmt.Sprintf(`# Written by canary-router init. Target %q: %s.
# To start a canary, add the canary revision and move weight to it step by
# step (weights sum to 100), e.g. 95 here and 5 to "1-25"; preview with
# canary-router simulate. Changing seed reshuffles every sticky choice.
granularity: %s
seed: "canary-router"
targets:
  - revision: %q
    weight: 100
namespaces:
  exclude: [%q]
`, s.target, s.why, g, s.target, istioNamespace)
}

// writeConfigMap prints the policy ConfigMap as YAML (by hand, so the
// policy document keeps its comments as a block scalar) or JSON.
func writeConfigMap(w io.Writer, cm *corev1.ConfigMap, output string) error {
	if output == "json" {
		b, err := json.MarshalIndent(cm, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\n  namespace: %s\ndata:\n  policy.yaml: |\n", cm.Name, cm.Namespace)
	for _, line := range strings.SplitAfter(strings.TrimRight(cm.Data["policy.yaml"], "\n"), "\n") {
		b.WriteString("    " + line)
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

package uninstall

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"

	"github.com/canary-router/canary-router/cmd/canary-router/cmdutil"
	"github.com/canary-router/canary-router/istio"
	"github.com/canary-router/canary-router/policy"
	"github.com/canary-router/canary-router/view/podview"
)

// partOfSelector selects every object the manifests create (the base
// kustomization's labels), in every overlay and deploy/monitoring.
const partOfSelector = "app.kubernetes.io/part-of=canary-router"

// Options holds the flags of canary-router uninstall.
type Options struct {
	kubeconfig, kubeContext string
	namespace, configMap    string
	istioNamespace          string
	revision                string
	// output is text, or json|yaml for the plan as a document (progress
	// of --apply then goes to stderr).
	output string
	apply  bool
	// keepObjects skips step 6: the Helm chart's pre-delete hook runs
	// uninstall in the router's namespace, which helm deletes next.
	keepObjects bool
}

func (c *Options) Bind(fs *pflag.FlagSet) {
	cmdutil.BindKubeFlags(fs, &c.kubeconfig, &c.kubeContext)
	fs.StringVar(&c.namespace, "namespace", "canary-router-system", "the router's namespace (deleted, with the policy ConfigMap)")
	fs.StringVar(&c.configMap, "policy-configmap", "canary-router-policy", "policy ConfigMap name (its heaviest target is a fallback revision)")
	fs.StringVar(&c.istioNamespace, "istio-namespace", "istio-system", "namespace of the istiod Services whose EndpointSlices say whether a revision is healthy")
	fs.StringVar(&c.revision, "revision", "", "give every managed namespace without an Istio label istio.io/rev=NAME instead of the computed choice")
	cmdutil.BindOutput(fs, &c.output, cmdutil.OutputText, cmdutil.OutputJSON, cmdutil.OutputYAML)
	fs.BoolVar(&c.apply, "apply", false, "carry out the plan (default: print it and change nothing)")
	fs.BoolVar(&c.keepObjects, "keep-objects", false, "leave the router's namespace, admission policies and roles for another tool to delete "+
		"(the Helm chart's pre-delete hook: helm uninstall deletes them next)")
}

func (c *Options) Check(args []string) error { return cmdutil.NoArgs(args) }

// run removes the router without unmeshing anything: it prints the plan,
// and with --apply carries it out (see uninstaller.run for the order and
// why).
func (c *Options) Run(ctx context.Context, _ []string, stdout, stderr io.Writer) int {
	kube, err := cmdutil.OperatorClients(c.kubeconfig, c.kubeContext, "uninstall")
	if err != nil {
		fmt.Fprintln(stderr, err)
		return cmdutil.ExitFailure
	}
	meta, err := metadata.NewForConfig(kube.Config)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return cmdutil.ExitFailure
	}
	ctx, cancel := context.WithTimeout(ctx, cmdutil.OpTimeout)
	defer cancel()
	u := &uninstaller{c: *c, client: kube.Client, meta: meta, out: stdout, errOut: stderr}
	if err := u.Run(ctx); err != nil {
		fmt.Fprintln(stderr, "canary-router uninstall:", err)
		return cmdutil.ExitFailure
	}
	return cmdutil.ExitOK
}

// uninstaller reads the cluster and carries out the plan.
type uninstaller struct {
	c           Options
	client      kubernetes.Interface
	meta        metadata.Interface
	out, errOut io.Writer
	warned      bool
}

// run prints the plan and, with --apply, carries it out in this order:
//
//  1. Every managed namespace gets its Istio label and loses
//     canary-router.io/injection, one patch each. From that moment the
//     pod webhook's namespaceSelector (opt-in label, no istio.io/rev) no
//     longer matches it and Istio's own namespace webhook injects its
//     pods: no pod is created in between without either.
//  2. A second pass relabels namespaces opted in while step 1 ran.
//  3. The webhook configurations go, while the router still serves: a
//     call in flight is answered, and nothing is ever sent to a router
//     that is gone (the pod webhook fails closed).
//  4. The router's bindings go, and uninstall waits until the API server
//     denies the router's ServiceAccount to patch namespaces: the
//     router's namespace reconciler would otherwise keep converting
//     namespaces labelled istio-injection=enabled to its opt-in label,
//     with no webhook left to route their pods.
//  5. A last pass relabels namespaces opted in before step 4 finished.
//  6. The router's namespace goes (Deployment, Service, policy ConfigMap,
//     CA Secret), then its admission policies and roles.
func (u *uninstaller) Run(ctx context.Context) error {
	in, err := u.read(ctx)
	if err != nil {
		return err
	}
	steps := planNamespaces(in)
	objects, err := u.routerObjects(ctx)
	if err != nil {
		return err
	}
	byPhase := objectsByPhase(objects)
	var problems int
	if u.c.output == cmdutil.OutputJSON || u.c.output == cmdutil.OutputYAML {
		doc := newPlan(u.c, steps, byPhase)
		if err := cmdutil.WriteDocument(u.out, u.c.output, doc); err != nil {
			return err
		}
		problems = doc.Problems
		// stdout holds exactly the one document; --apply's progress is
		// for people.
		u.out = u.errOut
	} else {
		problems = writePlan(u.out, u.c, steps, byPhase, u.c.apply)
	}
	if problems > 0 {
		return fmt.Errorf("%d namespaces have no live revision to go to; nothing was changed", problems)
	}
	if !u.c.apply {
		return nil
	}
	fmt.Fprintln(u.out, "\napplying:")
	if err := u.relabel(ctx, steps); err != nil {
		return err
	}
	if err := u.relabelStragglers(ctx); err != nil {
		return err
	}
	if err := u.deleteAll(ctx, byPhase[phaseWebhooks]); err != nil {
		return err
	}
	if err := u.deleteAll(ctx, byPhase[phaseBindings]); err != nil {
		return err
	}
	u.waitRevoked(ctx)
	if err := u.relabelStragglers(ctx); err != nil {
		return fmt.Errorf("after removing the webhooks: %w", err)
	}
	if u.c.keepObjects {
		fmt.Fprintln(u.out, "every namespace canary-router managed carries an Istio label; its other objects are left (--keep-objects)")
		return nil
	}
	if err := u.deleteAll(ctx, byPhase[phaseRest]); err != nil {
		return err
	}
	fmt.Fprintln(u.out, "canary-router is uninstalled; every namespace it managed carries an Istio label")
	return nil
}

func (u *uninstaller) deleteAll(ctx context.Context, objects []routerObject) error {
	for _, o := range objects {
		if err := u.delete(ctx, o); err != nil {
			return err
		}
	}
	return nil
}

// read gathers the plan's input: Istio's revisions and health, the
// namespaces the router manages with their live pods, and the policy.
func (u *uninstaller) read(ctx context.Context) (Input, error) {
	state, warn, err := istio.Read(ctx, u.client, u.c.istioNamespace, cmdutil.WebhookConfigName)
	if err != nil {
		return Input{}, err
	}
	if warn != "" && !u.warned {
		fmt.Fprintln(u.errOut, "warning:", warn)
	}
	in := Input{State: state, Revision: u.c.revision}
	if u.c.revision != "" {
		if st := state.Target(u.c.revision); !st.Available() {
			return in, fmt.Errorf("--revision %s: %s", u.c.revision, st.Detail)
		}
	}
	cm, err := u.client.CoreV1().ConfigMaps(u.c.namespace).Get(ctx, u.c.configMap, metav1.GetOptions{})
	if err == nil {
		in.Policy, err = policy.Parse([]byte(cm.Data["policy.yaml"]))
	}
	if err != nil && !apierrors.IsNotFound(err) && !u.warned {
		fmt.Fprintf(u.errOut, "warning: policy %s/%s not used: %v\n", u.c.namespace, u.c.configMap, err)
	}
	// The later passes read again; their warnings would only repeat.
	u.warned = true
	nss, err := u.client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		return in, fmt.Errorf("listing namespaces: %w", err)
	}
	for _, ns := range nss.Items {
		optIn := ns.Labels[policy.LabelOptIn] == policy.OptInEnabled
		_, routed := ns.Annotations[policy.AnnotationDecision]
		_, rev := ns.Labels[policy.LabelIstioRev]
		if ns.Name == u.c.namespace || ns.DeletionTimestamp != nil || !(optIn || (routed && rev)) {
			continue
		}
		pods, err := u.livePods(ctx, ns.Name)
		if err != nil {
			return in, err
		}
		in.Namespaces = append(in.Namespaces, Namespace{Name: ns.Name, Labels: ns.Labels, Annotations: ns.Annotations, Pods: pods})
	}
	return in, nil
}

// livePods counts a namespace's pods by routed and injected revision with
// the router's own pod view code, from pod metadata only.
func (u *uninstaller) livePods(ctx context.Context, namespace string) ([]podview.RevisionCount, error) {
	view := podview.New(podview.Options{})
	opts := metav1.ListOptions{Limit: 500}
	for {
		list, err := u.meta.Resource(schema.GroupVersionResource{Version: "v1", Resource: "pods"}).Namespace(namespace).List(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("listing pods in %s: %w", namespace, err)
		}
		for i := range list.Items {
			if list.Items[i].DeletionTimestamp == nil {
				view.OnAdd(&list.Items[i], true)
			}
		}
		if list.Continue == "" {
			return view.Revisions(), nil
		}
		opts.Continue = list.Continue
	}
}

// relabel writes each step with one merge patch: the Istio label and the
// removal of the router's label and decision annotation land together, so
// the namespace is never without both.
func (u *uninstaller) relabel(ctx context.Context, steps []namespaceStep) error {
	for _, s := range steps {
		if !s.changes() {
			continue
		}
		labels := map[string]any{}
		if s.SetLabel {
			labels[s.Label] = s.Value
		}
		if s.RemoveOptIn {
			labels[policy.LabelOptIn] = nil
		}
		patch := map[string]any{"metadata": map[string]any{"labels": labels,
			"annotations": map[string]any{policy.AnnotationDecision: nil}}}
		if err := patchNamespace(ctx, u.client, s.Namespace, patch); err != nil {
			return err
		}
		verb := "keeps"
		if s.SetLabel {
			verb = "set"
		}
		fmt.Fprintf(u.out, "  namespace/%s: %s %s=%s, %s removed\n", s.Namespace, verb, s.Label, s.Value, policy.LabelOptIn)
	}
	return nil
}

// relabelStragglers plans and relabels namespaces that still carry the
// opt-in label: created or labelled after the first read.
func (u *uninstaller) relabelStragglers(ctx context.Context) error {
	in, err := u.read(ctx)
	if err != nil {
		return err
	}
	var left []namespaceStep
	for _, s := range planNamespaces(in) {
		if s.RemoveOptIn {
			if s.Problem != "" {
				return fmt.Errorf("namespace %s was opted in during the uninstall: %s", s.Namespace, s.Problem)
			}
			left = append(left, s)
		}
	}
	return u.relabel(ctx, left)
}

// writePlan prints the plan and returns the number of namespaces with a
// problem.
func writePlan(w io.Writer, c Options, steps []namespaceStep, byPhase [phases][]routerObject, apply bool) int {
	if apply {
		fmt.Fprintln(w, "canary-router uninstall: plan")
	} else {
		fmt.Fprintln(w, "canary-router uninstall: plan (nothing is changed; run with --apply to carry it out)")
	}
	fmt.Fprintf(w, "\n1. Give every namespace canary-router manages an Istio label, and remove %s and annotation %s:\n",
		policy.LabelOptIn, policy.AnnotationDecision)
	if len(steps) == 0 {
		fmt.Fprintln(w, "   (no managed namespaces)")
	}
	problems := 0
	for _, s := range steps {
		switch {
		case s.Problem != "":
			problems++
			fmt.Fprintf(w, "   %-20s PROBLEM: %s\n", s.Namespace, s.Problem)
		case s.SetLabel:
			fmt.Fprintf(w, "   %-20s set  %s=%s (%s)\n", s.Namespace, s.Label, s.Value, s.Why)
		default:
			fmt.Fprintf(w, "   %-20s keep %s=%s (%s)\n", s.Namespace, s.Label, s.Value, s.Why)
		}
		for _, n := range s.Notes {
			fmt.Fprintf(w, "   %-20s      note: %s\n", "", n)
		}
	}
	fmt.Fprintln(w, "2. Relabel namespaces opted in meanwhile, the same way.")
	fmt.Fprintln(w, "3. Delete the router's webhook configurations (the router still serves until they are gone):")
	printObjects(w, byPhase[phaseWebhooks])
	fmt.Fprintln(w, "4. Delete the router's bindings, and wait until it may no longer relabel namespaces:")
	printObjects(w, byPhase[phaseBindings])
	fmt.Fprintln(w, "5. Relabel namespaces opted in meanwhile, once more.")
	if c.keepObjects {
		fmt.Fprintln(w, "6. Leave the router's other objects (--keep-objects):")
	} else {
		fmt.Fprintf(w, "6. Delete the router's other objects (the namespace holds the Deployment, Service and policy ConfigMap %s):\n", c.configMap)
	}
	printObjects(w, byPhase[phaseRest])
	if c.keepObjects {
		// helm uninstall deletes the release's objects next and leaves
		// the namespace, with the policy ConfigMap, in place.
		fmt.Fprintf(w, "\nThe policy ConfigMap %s stays in namespace %s until that namespace is deleted.\n", c.configMap, c.namespace)
		return problems
	}
	fmt.Fprintf(w, "\nThe policy is deleted with namespace %s; keep a copy first if you need it:\n  kubectl -n %s get configmap %s -o yaml > canary-router-policy.yaml\n",
		c.namespace, c.namespace, c.configMap)
	return problems
}

func printObjects(w io.Writer, objects []routerObject) {
	if len(objects) == 0 {
		fmt.Fprintln(w, "   (none found)")
	}
	for _, o := range objects {
		fmt.Fprintf(w, "   %s\n", o)
	}
}

// String is kind/name or kind namespace/name.
func (o routerObject) String() string {
	if o.Namespace == "" {
		return o.Kind + " " + o.Name
	}
	return o.Kind + " " + strings.Join([]string{o.Namespace, o.Name}, "/")
}

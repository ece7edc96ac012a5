package policy

// Label and annotation keys shared by the router's handlers, tests and docs.
const (
	// LabelIstioRev names the Istio revision (or revision tag) that injects
	// a pod or every pod of a namespace.
	LabelIstioRev = "istio.io/rev"
	// LabelIstioInjection is Istio's namespace switch for the default
	// revision; on a namespace it wins over istio.io/rev.
	LabelIstioInjection = "istio-injection"
	// LabelSidecarInject is the per-pod opt-out when set to "false". Istio
	// reads it as a label (object selector) and as an annotation (injector).
	LabelSidecarInject = "sidecar.istio.io/inject"
	// LabelOptIn marks a namespace whose pods the router routes; its value
	// is "enabled".
	LabelOptIn = "canary-router.io/injection"
	// AnnotationDecision records what the router decided for an object and
	// why, as a small JSON object with at least a "revision" field.
	AnnotationDecision = "canary-router.io/decision"
	// AnnotationInjectTemplates lists the injection templates Istio applies;
	// gateway pods name the "gateway" template here.
	AnnotationInjectTemplates = "inject.istio.io/templates"
)

// OptInEnabled is the value of LabelOptIn on a managed namespace.
const OptInEnabled = "enabled"

// systemNamespace reports the namespaces the router never touches whatever
// the policy says: breaking them would break the cluster the router runs on.
func systemNamespace(name string) bool {
	switch name {
	case "kube-system", "kube-public", "kube-node-lease":
		return true
	}
	return false
}

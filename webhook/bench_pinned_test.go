package webhook

import (
	"encoding/json"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/canary-router/canary-router/policy"
	"github.com/canary-router/canary-router/test/podgen"
)

// BenchmarkAdmitPinnedPod: what a pod that carries istio.io/rev costs the
// router now that the pod webhook sends it (docs/performance.md). Before,
// a match condition kept it away from the router (0 here, a CEL
// evaluation in the API server). Every case runs with the Istio view of
// two live revisions and a namespace view, as in a cluster, so routed is
// the comparable cost of an unpinned pod: pinned-live is admitted
// untouched, pinned-missing refused with a message naming the revision.
func BenchmarkAdmitPinnedPod(b *testing.B) {
	for _, c := range []struct {
		name  string
		rev   string // "" leaves the pod unpinned
		check func(testing.TB, []byte)
	}{
		{name: "routed", check: checkRouted},
		{name: "pinned-live", rev: "canary", check: checkUntouched},
		{name: "pinned-missing", rev: "stabel", check: checkRefused},
	} {
		for _, s := range []podgen.Shape{podgen.Small, podgen.Large} {
			b.Run(c.name+"/"+s.Name, func(b *testing.B) {
				f := gated(b, testPolicy, chartCluster(true, "stable", "canary"), nil)
				f.admitter.cluster.namespaces = fakeNamespaces{"shop": {"canary-router.io/injection": "enabled", "kubernetes.io/metadata.name": "shop"}}
				pod := podgen.Pod(s, 0)
				if c.rev != "" {
					pod.Labels[policy.LabelIstioRev] = c.rev
				}
				benchAdmit(b, f.admitter, podgen.Review(pod, "uid-1"), c.check)
			})
		}
	}
}

// checkUntouched fails unless resp admits the pod without a patch.
func checkUntouched(tb testing.TB, resp []byte) {
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(resp, &out); err != nil || out.Response == nil {
		tb.Fatalf("response %s: %v", resp, err)
	}
	if !out.Response.Allowed || len(out.Response.Patch) != 0 {
		tb.Fatalf("pod not admitted untouched: %s", resp)
	}
}

// checkRefused fails unless resp refuses the pod.
func checkRefused(tb testing.TB, resp []byte) {
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(resp, &out); err != nil || out.Response == nil {
		tb.Fatalf("response %s: %v", resp, err)
	}
	if out.Response.Allowed || out.Response.Result == nil || out.Response.Result.Code != 403 {
		tb.Fatalf("pod not refused: %s", resp)
	}
}

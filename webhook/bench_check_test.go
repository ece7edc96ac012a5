package webhook

import (
	"testing"

	"github.com/canary-router/canary-router/test/podgen"
)

// BenchmarkAdmitPodChecked: BenchmarkAdmitPod with the live Istio view
// and namespace labels a router in a cluster has, so the injection check
// (every injector webhook's selectors against the pod as the router leaves
// it) is on the path. Set beside BenchmarkAdmitPod it shows the check's
// cost.
func BenchmarkAdmitPodChecked(b *testing.B) {
	for _, s := range podgen.Shapes {
		b.Run(s.Name, func(b *testing.B) {
			f := gated(b, testPolicy, chartCluster(true, "stable", "canary"), nil)
			pod := podgen.Pod(s, 0)
			f.admitter.cluster.namespaces = fakeNamespaces{pod.Namespace: {
				"canary-router.io/injection": "enabled", "kubernetes.io/metadata.name": pod.Namespace}}
			benchAdmit(b, f.admitter, podgen.Review(pod, "uid-1"), checkRouted)
		})
	}
}

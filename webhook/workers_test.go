package webhook

import (
	"bytes"
	"fmt"
	"net/http"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canary-router/canary-router/webhook/wire"
)

// The handler encodes the answer over the request body's buffer (one
// buffer per request): that is only right if no part of an answer aliases
// the body. Overwriting the body after answering must not change what is
// encoded, for every kind of answer.
func TestAnswerHoldsNothingOfTheBody(t *testing.T) {
	f := newFixture(t, testPolicy)
	a := f.admitter
	pod := deploymentPod("shop", "web", "7d4b9c", map[string]string{"team": "a<b>&\"c\""})
	pod.Annotations = map[string]string{"note": "kept \u2028 as is"}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: map[string]string{"canary-router.io/injection": "enabled"}}}
	cases := []struct {
		name     string
		body     []byte
		resource string
		admit    admitFunc
	}{
		{"routed pod", reviewBody(t, "pods", "CREATE", "shop", pod, false), resourcePods, a.admitPod},
		{"namespace", reviewBody(t, "namespaces", "CREATE", "", ns, false), resourceNamespaces, a.admitNamespace},
		{"malformed", []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u-9","object":{`), resourcePods, a.admitPod},
		{"mistyped object", []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u-9","resource":{"version":"v1","resource":"pods"},"operation":"CREATE","object":{"metadata":{"labels":{"a":1}}}}}`), resourcePods, a.admitPod},
		{"wrong resource", reviewBody(t, "namespaces", "CREATE", "", ns, false), resourcePods, a.admitPod},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := bytes.Clone(c.body)
			_, resp := a.answer(body, c.resource, c.admit)
			before := wire.AppendReview(nil, &resp)
			for i := range body {
				body[i] = 'x'
			}
			if after := wire.AppendReview(nil, &resp); !bytes.Equal(before, after) {
				t.Fatalf("the answer changed with the body:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}

// Many requests at once, more than there are workers, each get their own
// answer: the handoff to workers mixes no two requests up.
func TestConcurrentAdmissionsKeepTheirAnswers(t *testing.T) {
	f := newFixture(t, testPolicy)
	h := f.admitter.PodHandler()
	const clients, each = 64, 20
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for c := range clients {
		wg.Go(func() {
			for i := range each {
				want := fmt.Sprintf("uid-%03d-%03d", c, i)
				pod := deploymentPod("shop", fmt.Sprintf("web-%d", c), "7d4b9c", nil)
				body := bytes.Replace(reviewBody(t, "pods", "CREATE", "shop", pod, false), []byte(`"uid-1"`), []byte(`"`+want+`"`), 1)
				code, resp, err := serveReview(h, body, "application/json")
				if err != nil {
					errs <- fmt.Errorf("request %s: %v", want, err)
					return
				}
				if code != http.StatusOK || string(resp.UID) != want || !resp.Allowed || len(resp.Patch) == 0 {
					errs <- fmt.Errorf("request %s: HTTP %d, response %+v", want, code, resp)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

package webhook

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// TestConcurrentRequestsKeepTheirOwnBuffers: pooled request and response
// buffers never leak one request's bytes into another's answer.
func TestConcurrentRequestsKeepTheirOwnBuffers(t *testing.T) {
	f := newFixture(t, testPolicy)
	h := f.admitter.PodHandler()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				uid := fmt.Sprintf("uid-%d-%d", g, i)
				pod := deploymentPod("shop", fmt.Sprintf("web%d", i%5), "h", map[string]string{"pad": strings.Repeat("x", i*100)})
				body := bytes.Replace(reviewBody(t, "pods", "CREATE", "shop", pod, false), []byte(`"uid-1"`), []byte(`"`+uid+`"`), 1)
				req := httptest.NewRequest(http.MethodPost, PathPods, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if !bytes.Contains(rec.Body.Bytes(), []byte(`"uid":"`+uid+`","allowed":true`)) || !bytes.Contains(rec.Body.Bytes(), []byte(`"patch":"`)) {
					t.Errorf("request %s answered %s", uid, rec.Body.Bytes())
					return
				}
			}
		})
	}
	wg.Wait()
}

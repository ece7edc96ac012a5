package webhook

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
)

func TestReadAll(t *testing.T) {
	body := strings.Repeat("0123456789", 5000)
	plain := func() io.Reader { return strings.NewReader(body) }
	cases := []struct {
		name string
		r    func() io.Reader
		size int64
	}{
		{"known size", plain, int64(len(body))},
		{"unknown size", plain, -1},
		{"size understated", plain, 10},
		{"size overstated", plain, int64(len(body)) * 2},
		{"one byte at a time", func() io.Reader { return iotest.OneByteReader(plain()) }, int64(len(body))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, buf := range [][]byte{nil, make([]byte, 0, 16), make([]byte, 3, 1<<20)} {
				if got, err := readAll(c.r(), buf[:0], c.size); err != nil || string(got) != body {
					t.Fatalf("read %d bytes, err %v; want %d", len(got), err, len(body))
				}
			}
		})
	}
	if got, err := readAll(strings.NewReader(""), nil, 0); err != nil || len(got) != 0 {
		t.Fatalf("empty body: %q, %v", got, err)
	}
	if _, err := readAll(iotest.ErrReader(io.ErrUnexpectedEOF), nil, -1); err != io.ErrUnexpectedEOF {
		t.Fatalf("error %v, want the reader's", err)
	}
}

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

package webhook

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
)

// TestOversizeBodyAnswered413 sends an 8 MiB body, over the limit, in full
// before reading the answer, as the apiserver's client does, over TLS with
// HTTP/1.1 and HTTP/2 as the router serves: the answer must be the 413
// review, not a reset connection.
func TestOversizeBodyAnswered413(t *testing.T) {
	f := newFixture(t, testPolicy)
	srv := httptest.NewUnstartedServer(f.admitter.PodHandler())
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	body := bytes.Repeat([]byte("x"), 8<<20)
	tlsConf := srv.Client().Transport.(*http.Transport).TLSClientConfig

	check := func(t *testing.T, resp *http.Response, wantProto int) {
		t.Helper()
		defer resp.Body.Close()
		if resp.ProtoMajor != wantProto {
			t.Errorf("answered over HTTP/%d, want HTTP/%d", resp.ProtoMajor, wantProto)
		}
		var review admissionv1.AdmissionReview
		data, err := io.ReadAll(resp.Body)
		if err == nil {
			err = json.Unmarshal(data, &review)
		}
		if err != nil || review.Response == nil || review.Response.Result == nil {
			t.Fatalf("HTTP %d, body %q (%v): want an AdmissionReview", resp.StatusCode, data, err)
		}
		if resp.StatusCode != http.StatusRequestEntityTooLarge || review.Response.Result.Code != 413 ||
			review.Response.Allowed || !strings.Contains(review.Response.Result.Message, "limit") {
			t.Errorf("HTTP %d, result %+v: want a 413 refusal naming the limit", resp.StatusCode, review.Response.Result)
		}
	}

	t.Run("HTTP/1.1", func(t *testing.T) {
		conf := tlsConf.Clone()
		conf.NextProtos = []string{"http/1.1"}
		conn, err := tls.Dial("tcp", srv.Listener.Addr().String(), conf)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
		head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: router\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", PathPods, len(body))
		if _, err := conn.Write(append([]byte(head), body...)); err != nil {
			t.Fatalf("writing the whole body: %v", err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("reading the answer after the whole body: %v", err)
		}
		check(t, resp, 1)
	})

	t.Run("HTTP/2", func(t *testing.T) {
		client := srv.Client()
		client.Timeout = 30 * time.Second
		req, err := http.NewRequest(http.MethodPost, srv.URL+PathPods, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		check(t, resp, 2)
	})
}

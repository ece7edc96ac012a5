// Package promrun holds what the suites and the demo that run a real
// Prometheus share: stopping its process group and reading one value of
// an instant query.
package promrun

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os/exec"
	"syscall"
	"time"
)

// Stop ends a process started in its own group: SIGTERM, then SIGKILL
// after 10 seconds, and waits until it is reaped. A nil or unstarted cmd
// is a no-op.
func Stop(cmd *exec.Cmd) {
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

// Scalar returns the single value of an instant query against the
// Prometheus at baseURL (http://host:port); no sample, or several, is an
// error.
func Scalar(ctx context.Context, baseURL, expr string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/api/v1/query?"+url.Values{"query": {expr}}.Encode(), nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var body struct {
		Data struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || len(body.Data.Result) != 1 {
		return 0, fmt.Errorf("no single sample (%v)", err)
	}
	s, _ := body.Data.Result[0].Value[1].(string)
	var v float64
	_, err = fmt.Sscan(s, &v)
	return v, err
}

package serve

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func TestProbeFlags(t *testing.T) {
	tests := []struct {
		args    []string
		want    probeConfig
		wantErr string
	}{
		{args: nil, want: probeConfig{interval: time.Second, timeout: 500 * time.Millisecond, review: time.Minute}},
		{args: []string{"--injector-probe-interval=0"}, want: probeConfig{timeout: 500 * time.Millisecond, review: time.Minute}},
		{args: []string{"--injector-probe-interval=2s", "--injector-probe-timeout=1s", "--injector-probe-review-interval=5m"},
			want: probeConfig{interval: 2 * time.Second, timeout: time.Second, review: 5 * time.Minute}},
		{args: []string{"--injector-probe-review-interval=0"}, wantErr: "--injector-probe-review-interval 0s: must be positive"},
		{args: []string{"--injector-probe-interval=-1s"}, wantErr: "--injector-probe-interval -1s: must be 0 (off) or positive"},
		{args: []string{"--injector-probe-timeout=0"}, wantErr: "--injector-probe-timeout 0s: must be positive"},
		// Off: the timeout does not matter.
		{args: []string{"--injector-probe-interval=0", "--injector-probe-timeout=0", "--injector-probe-review-interval=0"}, want: probeConfig{}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var c clusterConfig
			fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
			fs.SetOutput(io.Discard)
			c.Bind(fs)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			err := c.probe.validate()
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Errorf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || c.probe != tt.want {
				t.Errorf("config %+v, err %v; want %+v", c.probe, err, tt.want)
			}
		})
	}
}

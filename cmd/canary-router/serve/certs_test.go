package serve

import (
	"io"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func TestCertFlags(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"defaults: self-managed", nil, ""},
		{"external with a folder", []string{"--cert-mode=external", "--cert-dir=/certs"}, ""},
		{"integration-test lifetimes", []string{"--cert-validity=20s", "--ca-validity=40s", "--cert-check-interval=1s", "--ca-overlap=5s"}, ""},
		{"extra SANs", []string{"--cert-extra-sans=127.0.0.1, router.example.com"}, ""},
		{"unknown mode", []string{"--cert-mode=cert-manager"}, `--cert-mode "cert-manager"`},
		{"external without a folder", []string{"--cert-mode=external", "--cert-dir="}, "--cert-dir: required"},
		{"no service name", []string{"--service-name="}, "--service-name: required"},
		{"check slower than the renewal window", []string{"--cert-validity=1h", "--cert-check-interval=15m"}, "at most a sixth of --cert-validity"},
		{"overlap shorter than two checks", []string{"--ca-overlap=90s"}, "at least twice --cert-check-interval"},
		{"rollover longer than the CA's last third", []string{"--ca-validity=24h", "--ca-overlap=5h"}, "less than a third of --ca-validity"},
		{"empty SAN", []string{"--cert-extra-sans=a,,b"}, "empty entry"},
		{"zero lifetime", []string{"--cert-validity=0s"}, "must be positive"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var cfg certConfig
			fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
			fs.SetOutput(io.Discard)
			cfg.Bind(fs)
			if err := fs.Parse(c.args); err != nil {
				t.Fatal(err)
			}
			errs := cfg.validate()
			var msgs []string
			for _, e := range errs {
				msgs = append(msgs, e.Error())
			}
			got := strings.Join(msgs, "\n")
			switch {
			case c.wantErr == "" && len(errs) > 0:
				t.Errorf("validate: %s", got)
			case c.wantErr != "" && !strings.Contains(got, c.wantErr):
				t.Errorf("validate: %q, want an error containing %q", got, c.wantErr)
			}
		})
	}
}

func TestCertExtraSANsNormalised(t *testing.T) {
	c := certConfig{extraSANs: " 127.0.0.1 ,::1,router.example.com"}
	got := strings.Join(c.sans(), ",")
	if want := "127.0.0.1,::1,router.example.com"; got != want {
		t.Errorf("sans() = %q, want %q", got, want)
	}
}

package serve

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/pflag"
	"go.uber.org/zap"

	"github.com/canary-router/canary-router/istio"
	"github.com/canary-router/canary-router/webhook"
)

// probeConfig holds the flags of the active check of Istio's injector
// webhooks, the half of the health gate that does not wait for istiod's
// EndpointSlices.
type probeConfig struct {
	interval, timeout, review time.Duration
}

func (c *probeConfig) Bind(fs *pflag.FlagSet) {
	fs.DurationVar(&c.interval, "injector-probe-interval", istio.DefaultProbeInterval,
		"how often to check that each Istio revision's injector webhook answers (TLS connect and a dry-run review); "+
			"a revision failing 2 checks in a row gets no pods until one answers; 0 disables the check, leaving istiod's EndpointSlices alone")
	fs.DurationVar(&c.timeout, "injector-probe-timeout", istio.DefaultProbeTimeout,
		"how long one injector check may take before it counts as failed")
	fs.DurationVar(&c.review, "injector-probe-review-interval", istio.DefaultProbeReviewEvery,
		"how often a revision that answers gets a dry-run review (two info log lines in istiod) instead of the quiet check of "+istio.IstiodReadyPath+
			" on the same TLS port (none); a failing revision is checked with reviews")
}

func (c *probeConfig) validate() error {
	if c.interval < 0 {
		return fmt.Errorf("--injector-probe-interval %s: must be 0 (off) or positive", c.interval)
	}
	if c.interval > 0 && c.timeout <= 0 {
		return fmt.Errorf("--injector-probe-timeout %s: must be positive", c.timeout)
	}
	if c.interval > 0 && c.review <= 0 {
		return fmt.Errorf("--injector-probe-review-interval %s: must be positive", c.review)
	}
	return nil
}

// startInjectorProbe validates the flags and, unless the check is off,
// starts a Prober that feeds its verdicts into w until ctx ends.
func startInjectorProbe(ctx context.Context, cfg probeConfig, w *istio.Watcher, metrics *webhook.Metrics, log *zap.Logger) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	if cfg.interval == 0 {
		log.Warn("injector probe disabled (--injector-probe-interval=0): a dead istiod is routed around only once its EndpointSlices say not ready")
		return nil
	}
	p := istio.NewProber(istio.ProberOptions{
		State:    w.Current,
		Report:   w.SetNotAnswering,
		Interval: cfg.interval,
		Timeout:  cfg.timeout,
		// The quiet check between reviews keeps istiod's log to a few
		// lines a minute (docs/routing.md, "The injector check").
		ReviewEvery: cfg.review,
		Observer:    metrics,
		Log:         log.Named("probe"),
	})
	go p.Run(ctx)
	return nil
}

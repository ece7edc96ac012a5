package istio

import (
	"bytes"
	"maps"
	"net"
	"net/url"
	"sort"
	"strconv"
)

// ProbeTarget is where the active check reaches one revision's injector:
// the client config of the first webhook of the revision's own config
// (istio-sidecar-injector-<rev>), which is what the API server calls for
// every pod labelled with the revision.
type ProbeTarget struct {
	Revision string
	// Config and Webhook name the webhook the address was taken from.
	Config, Webhook string
	// URL is the webhook's URL as is, or for a Service reference
	// https://<name>.<namespace>.svc:<port><path>: the host the API server
	// verifies the serving certificate for.
	URL string
	// CABundle verifies the serving certificate; empty means the system
	// roots.
	CABundle []byte
}

// probeTargets finds each revision's own config and its first webhook
// with a client config. Revision tags are not checked on their own: a tag
// is as live as its revision (State.Target), and Istio renders a tag's
// webhooks with the revision's istiod address. A revision whose config
// carries no webhook (read from metadata only, or empty) has nothing to
// check and keeps the verdict of its EndpointSlices alone.
func probeTargets(configs []Config) map[string]ProbeTarget {
	own := make([]Config, 0, len(configs))
	for _, c := range configs {
		if c.Rev != "" && c.Tag == "" {
			own = append(own, c)
		}
	}
	// Two configs claiming one revision: the first by name, the one the API
	// server calls first.
	sort.Slice(own, func(i, j int) bool { return own[i].Name < own[j].Name })
	out := map[string]ProbeTarget{}
	for _, c := range own {
		if _, ok := out[c.Rev]; ok {
			continue
		}
		for _, h := range c.Webhooks {
			if u := clientURL(h.Client); u != "" {
				out[c.Rev] = ProbeTarget{Revision: c.Rev, Config: c.Name, Webhook: h.Name, URL: u, CABundle: h.Client.CABundle}
				break
			}
		}
	}
	return out
}

// clientURL is the address the API server calls for a client config.
func clientURL(c ClientConfig) string {
	if c.URL != "" {
		return c.URL
	}
	s := c.Service
	if s == nil || s.Name == "" || s.Namespace == "" {
		return ""
	}
	u := url.URL{Scheme: "https", Host: net.JoinHostPort(s.Name+"."+s.Namespace+".svc", strconv.Itoa(int(s.Port))), Path: s.Path}
	return u.String()
}

func sameProbeTarget(a, b ProbeTarget) bool {
	return a.Revision == b.Revision && a.Config == b.Config && a.Webhook == b.Webhook &&
		a.URL == b.URL && bytes.Equal(a.CABundle, b.CABundle)
}

// ProbeTargets returns where each revision's injector is checked, by
// revision.
func (s *State) ProbeTargets() map[string]ProbeTarget { return maps.Clone(s.probes) }

// WithNotAnswering returns a copy of s in which each revision in
// notAnswering (revision -> what the active check saw) whose istiod
// EndpointSlices say ready is unavailable with CauseNotAnswering. s is
// unchanged: a State stays immutable once built.
func (s *State) WithNotAnswering(notAnswering map[string]string) *State {
	c := *s
	c.notAnswering = maps.Clone(notAnswering)
	return &c
}

// NotAnswering returns the revisions taken out by the active check, with
// what it saw.
func (s *State) NotAnswering() map[string]string { return maps.Clone(s.notAnswering) }

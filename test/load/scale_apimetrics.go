package main

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"k8s.io/client-go/kubernetes"
)

// apiCounts is what kube-apiserver's own metrics say it served, summed by
// verb and resource: requests, response bytes, and the watches open now.
type apiCounts struct {
	requests map[string]float64 // "VERB resource"
	bytes    map[string]float64
	watches  map[string]float64 // open watches by resource
	// watchEvents and watchBytes are the events sent on watches and their
	// size, by kind: with the streaming list a watch carries the initial
	// state too, so this is where a start-up's bytes show.
	watchEvents, watchBytes map[string]float64
}

// scrapeAPIServer reads kube-apiserver's /metrics. The request counts
// include the apiserver's own loopback clients, so the scale run counts
// the routers' requests from the audit log (scale_audit.go) and takes
// from here what only the routers cause: watch events sent and their
// bytes while a replica starts, and the watches open.
func scrapeAPIServer(ctx context.Context, client kubernetes.Interface) (apiCounts, error) {
	raw, err := client.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return apiCounts{}, fmt.Errorf("kube-apiserver /metrics: %w", err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(raw))
	if err != nil {
		return apiCounts{}, fmt.Errorf("kube-apiserver /metrics: %w", err)
	}
	c := apiCounts{requests: map[string]float64{}, bytes: map[string]float64{}, watches: map[string]float64{},
		watchEvents: map[string]float64{}, watchBytes: map[string]float64{}}
	for _, m := range families["apiserver_request_total"].GetMetric() {
		l := labelsOf(m.GetLabel())
		c.requests[l["verb"]+" "+l["resource"]] += m.GetCounter().GetValue()
	}
	for _, m := range families["apiserver_response_sizes"].GetMetric() {
		l := labelsOf(m.GetLabel())
		c.bytes[l["verb"]+" "+l["resource"]] += m.GetHistogram().GetSampleSum()
	}
	for _, m := range families["apiserver_longrunning_requests"].GetMetric() {
		l := labelsOf(m.GetLabel())
		if l["verb"] == "WATCH" {
			c.watches[l["resource"]] += m.GetGauge().GetValue()
		}
	}
	for _, m := range families["apiserver_watch_events_total"].GetMetric() {
		c.watchEvents[watchedResource(m.GetLabel())] += m.GetCounter().GetValue()
	}
	for _, m := range families["apiserver_watch_events_sizes"].GetMetric() {
		c.watchBytes[watchedResource(m.GetLabel())] += m.GetHistogram().GetSampleSum()
	}
	return c, nil
}

// watchedResource names a watch metric's resource: newer kube-apiservers
// label it resource ("pods"), older ones kind ("Pod").
func watchedResource[L interface {
	GetName() string
	GetValue() string
}](pairs []L) string {
	l := labelsOf(pairs)
	if r, ok := l["resource"]; ok {
		return r
	}
	return strings.ToLower(l["kind"]) + "s"
}

func labelsOf[L interface {
	GetName() string
	GetValue() string
}](pairs []L) map[string]string {
	out := make(map[string]string, len(pairs))
	for _, p := range pairs {
		out[p.GetName()] = p.GetValue()
	}
	return out
}

// apiDelta is the traffic between two scrapes.
type apiDelta struct {
	lists, watches, gets, writes float64
	listBytes, totalBytes        float64
	// watchEvents and watchBytes: sent on watches, all kinds; podEvents
	// and podBytes: of pods alone.
	watchEvents, watchBytes, podEvents, podBytes float64
	// opened is the watches opened (open after minus before), by resource.
	opened map[string]float64
	// byKey is every "VERB resource" with a non-zero count, for the log.
	byKey map[string]float64
}

func (b apiCounts) since(a apiCounts) apiDelta {
	d := apiDelta{byKey: map[string]float64{}, opened: map[string]float64{}}
	for k, v := range b.watches {
		if n := v - a.watches[k]; n != 0 {
			d.opened[k] = n
		}
	}
	for k, v := range b.watchEvents {
		n := v - a.watchEvents[k]
		d.watchEvents += n
		if k == "pods" {
			d.podEvents = n
		}
	}
	for k, v := range b.watchBytes {
		n := v - a.watchBytes[k]
		d.watchBytes += n
		if k == "pods" {
			d.podBytes = n
		}
	}
	for k, v := range b.requests {
		n := v - a.requests[k]
		if n <= 0 {
			continue
		}
		verb, resource, _ := strings.Cut(k, " ")
		if resource == "" {
			continue // /metrics, /readyz and other non-resource requests
		}
		d.byKey[k] = n
		switch verb {
		case "LIST":
			d.lists += n
		case "WATCH":
			d.watches += n
		case "GET":
			d.gets += n
		default:
			d.writes += n
		}
	}
	for k, v := range b.bytes {
		n := v - a.bytes[k]
		if verb, resource, _ := strings.Cut(k, " "); n > 0 && resource != "" {
			d.totalBytes += n
			if verb == "LIST" {
				d.listBytes += n
			}
		}
	}
	return d
}

// String lists the counts, largest first.
func (d apiDelta) String() string {
	keys := make([]string, 0, len(d.byKey))
	for k := range d.byKey {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		return d.byKey[keys[i]] > d.byKey[keys[j]] || d.byKey[keys[i]] == d.byKey[keys[j]] && keys[i] < keys[j]
	})
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%.0f", k, d.byKey[k]))
	}
	out := strings.Join(parts, " ")
	if d.watchEvents > 0 {
		out += fmt.Sprintf("; watch events %.0f (%.1f MB), of pods %.0f (%.1f MB)", d.watchEvents, d.watchBytes/1e6, d.podEvents, d.podBytes/1e6)
	}
	if len(d.opened) > 0 {
		out += "; watches opened " + openedText(d.opened)
	}
	return out
}

// openedText lists watches opened by resource, sorted.
func openedText(m map[string]float64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %.0f", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/canary-router/canary-router/test/cluster"
)

// routerGroup is the group of the router replicas' client certificates:
// kube-apiserver's audit log records their requests and nobody else's,
// so each replica's traffic is told apart from the apiserver's own
// loopback clients (which list Services, watch namespaces...).
const routerGroup = "canary-router:scale"

const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: Metadata
  userGroups: ["` + routerGroup + `"]
- level: None
`

// enableAudit restarts kube-apiserver with the audit log on, and returns
// the log's path.
func enableAudit(ctx context.Context, c *cluster.Cluster, dir string) (string, error) {
	policy, log := filepath.Join(dir, "audit-policy.yaml"), filepath.Join(dir, "audit.log")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	if err := os.WriteFile(policy, []byte(auditPolicy), 0o644); err != nil {
		return "", err
	}
	return log, c.RestartAPIServerWithFlags(ctx, "--audit-policy-file="+policy, "--audit-log-path="+log,
		"--audit-log-format=json", "--audit-log-mode=blocking")
}

// auditEvent is what the count reads of one audit log line.
type auditEvent struct {
	Stage     string                    `json:"stage"`
	Verb      string                    `json:"verb"`
	User      struct{ Username string } `json:"user"`
	ObjectRef *struct {
		Resource string `json:"resource"`
	} `json:"objectRef"`
	RequestURI string    `json:"requestURI"`
	Received   time.Time `json:"requestReceivedTimestamp"`
}

// readAudit reads the log: one event per request (a watch when it
// starts streaming, any other request when it completes).
func readAudit(path string) ([]auditEvent, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []auditEvent
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		var e auditEvent
		if json.Unmarshal(sc.Bytes(), &e) != nil {
			continue
		}
		if (e.Verb == "watch" && e.Stage == "ResponseStarted") || (e.Verb != "watch" && e.Stage == "ResponseComplete") {
			out = append(out, e)
		}
	}
	return out, sc.Err()
}

// countRequests sets d's request counts from the audit events of users
// received in [from, to). A watch that streams the initial state
// (sendInitialEvents, the streaming list) is counted apart as well.
func (d *apiDelta) countRequests(events []auditEvent, users []string, from, to time.Time) {
	d.lists, d.watches, d.gets, d.writes, d.byKey = 0, 0, 0, 0, map[string]float64{}
	for _, e := range events {
		if e.Received.Before(from) || !e.Received.Before(to) || !slices.Contains(users, e.User.Username) {
			continue
		}
		// A request without an object is discovery (/api, /apis, /version).
		resource, _, _ := strings.Cut(e.RequestURI, "?")
		if e.ObjectRef != nil {
			resource = e.ObjectRef.Resource
		}
		verb := strings.ToUpper(e.Verb)
		if e.Verb == "watch" && strings.Contains(e.RequestURI, "sendInitialEvents=true") {
			verb = "WATCH+initial"
		}
		d.byKey[verb+" "+resource]++
		switch e.Verb {
		case "list":
			d.lists++
		case "watch":
			d.watches++
		case "get":
			d.gets++
		default:
			d.writes++
		}
	}
}

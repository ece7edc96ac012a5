package faults

import (
	"testing"
	"time"

	"github.com/canary-router/canary-router/test/harness"
)

// TestRouterOutage kills the router (SIGKILL, as a crash or an OOM kill
// would) while pods are being created in a managed namespace and a
// Deployment is scaled up, then starts it again. The pod webhook fails
// closed: while the router is down every creation is refused, none is
// admitted without a routing label, and once it is back the refused
// creations resume, the ReplicaSet controller's retries included.
func TestRouterOutage(t *testing.T) {
	const ns = "outage"
	r, load := underLoad(t, ns, "outage", 4)
	down := time.Now()
	r.kill()
	// The controller manager tries to create these while the router is
	// down, and must get them created once it is back.
	env.Scale(t, ns, "web", 8)
	time.Sleep(5 * time.Second)
	restarted := time.Now()
	if err := r.start(harness.Context(t, time.Minute)); err != nil {
		load.stop()
		t.Fatal(err)
	}
	up := time.Now()
	time.Sleep(4 * time.Second)
	load.stop()
	env.WaitLivePods(t, ns, "app=web", 8, 2*time.Minute)
	resumed := time.Since(up)

	before, during, starting, after := load.counts(time.Time{}, down), load.counts(down, restarted), load.counts(restarted, up), load.counts(up, time.Time{})
	t.Logf("RESULT router outage: down %s, restart to ready %s; creations before: %s; while down: %s; while starting: %s; after: %s",
		restarted.Sub(down).Round(time.Millisecond), up.Sub(restarted).Round(time.Millisecond), format(before), format(during), format(starting), format(after))
	load.expectOnly(t, "before the outage", before, outCreated)
	// A creation the apiserver sent to the router just before the kill
	// may still have been admitted, routed; every other one is refused.
	load.expectOnly(t, "while the router is down", during, outRouterDown, outCreated)
	// A starting router is called before it is ready (the webhook URL is
	// the process, not a Service that waits for readiness), so it may
	// refuse a pod before it has its policy or Istio's state: the refusal
	// the design asks for, never an unrouted pod.
	load.expectOnly(t, "while the router starts", starting, outRouterDown, outNoPolicy, outNotSynced, outCreated)
	load.expectOnly(t, "after the router is ready", after, outCreated)
	if during[outRouterDown] == 0 {
		t.Errorf("no creation refused while the router was down")
	}
	if during[outCreated] > 2 {
		t.Errorf("%d pods created while the router was down", during[outCreated])
	}
	if after[outCreated] == 0 {
		t.Errorf("no pod created after the router came back")
	}
	web, badWeb := audit(t, ns, "app=web")
	pods, badLoad := audit(t, ns, "load=true")
	t.Logf("RESULT router outage: web scaled 4 -> 8 during the outage, all 8 pods created %s after the router was ready: %v; load pods %v; pods not routed or mis-injected: %d",
		resumed.Round(time.Millisecond), web, pods, badWeb+badLoad)
	if badWeb+badLoad > 0 || load.unrouted() > 0 {
		t.Errorf("%d pods admitted without a routing label or injected by another revision", badWeb+badLoad+load.unrouted())
	}
	if web["stable"] != 4 || web["canary"] != 4 {
		t.Errorf("web pods per revision %v, want exactly 4 and 4", web)
	}
}

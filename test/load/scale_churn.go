package main

import (
	"context"

	"k8s.io/client-go/kubernetes"
)

// churn creates cfg.churn pods through the router's pod webhook (served
// by the follower, across the run's namespaces) and as many through the
// no-op floor webhook, in alternating batches, so both see the same
// apiserver load; every pod must come back labelled by its webhook.
func churn(ctx context.Context, e *env, client kubernetes.Interface, router *server, shape scaleShape, cfg scaleConfig) (_, _ *batch, err error) {
	floor, err := e.startFloor(ctx, true)
	if err != nil {
		return nil, nil, err
	}
	defer floor.stop()
	if err := e.registerWebhook(ctx, "canary-router", router.port, routerLabel); err != nil {
		return nil, nil, err
	}
	if err := e.registerWebhook(ctx, "floor-webhook", floor.port, floorLabel); err != nil {
		return nil, nil, err
	}
	if err := createNamespace(ctx, client, floorNamespace, map[string]string{floorLabel: "enabled"}); err != nil {
		return nil, nil, err
	}
	floorPerf := perfNamespace{name: floorNamespace, labelled: true}
	// A warm-up of both paths (connections, caches), not measured.
	for _, p := range []perfNamespace{{name: scaleNamespace(0), labelled: true}, floorPerf} {
		if _, err := createPods(ctx, client, p, 50, cfg.churnWorkers, 9_000_000, nil); err != nil {
			return nil, nil, err
		}
	}
	const per = 50
	routed, floored := &batch{}, &batch{}
	for r := 0; r*per < cfg.churn; r++ {
		n := min(per, cfg.churn-r*per)
		routedPerf := perfNamespace{name: scaleNamespace(r % shape.namespaces()), labelled: true}
		order := []perfNamespace{routedPerf, floorPerf}
		if r%2 == 1 {
			order[0], order[1] = order[1], order[0]
		}
		for _, p := range order {
			b, err := createPods(ctx, client, p, n, cfg.churnWorkers, 10_000_000+r*per, nil)
			if err != nil {
				return nil, nil, err
			}
			if p.name == floorNamespace {
				floored.add(b)
			} else {
				routed.add(b)
			}
		}
	}
	return routed, floored, nil
}

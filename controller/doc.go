// Package controller holds the router's controllers: level-triggered loops
// that read the cluster from informer caches and write to it, run by the
// one replica that holds the leader Lease. The admission path (package
// webhook) never waits for them; they repair what admission alone cannot
// see, such as a namespace labelled while the router was down.
package controller

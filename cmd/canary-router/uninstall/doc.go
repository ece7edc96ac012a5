// Package uninstall is `canary-router uninstall`: it plans removing the
// router without leaving a namespace unmeshed (each managed namespace
// back on a live Istio revision, then the router's own objects), and
// carries the plan out with --apply. planNamespaces is a plain function
// over an Input read from the cluster, table-tested.
package uninstall

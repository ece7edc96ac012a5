// Package initpolicy is `canary-router init`: it reads the live Istio
// revisions and prints (or, with --apply, creates) a first policy that
// keeps every pod where it is. chooseStarter and starterDoc are plain
// functions over the Istio state and pod counts, table-tested.
package initpolicy

// Package statuscmd is `canary-router status`: the target and observed
// share per revision, the namespaces, the pins and the migration, read
// once from the cluster (package report reads and renders).
package statuscmd

// Package rolloutcmd is `canary-router rollout status|pause|resume|
// promote|abort|retry`, and the terminal view `rollout status --watch`.
package rolloutcmd

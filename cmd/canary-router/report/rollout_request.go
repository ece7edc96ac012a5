package report

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/canary-router/canary-router/controller/migrate"
	"github.com/canary-router/canary-router/controller/rollout"
)

// RolloutActions are the subcommands, in the order help lists them.
var RolloutActions = []struct{ Name, Short string }{
	{"status", "Show the rollout: step, phase, weights in force, gates and the last reason"},
	{"pause", "Hold the rollout at the weights in force (the migration of the step finishes)"},
	{"resume", "Resume a paused rollout: the step in force starts again and its hold restarts"},
	{"promote", "End the hold of the step in force (a manual hold too); the gates still decide"},
	{"abort", "Roll the canary back to weight 0; the migration moves its workloads back"},
	{"retry", "Start an aborted or paused rollout again from its first step"},
}

// RolloutPatch is what a command writes. One-shot commands carry an id
// (the time), so the leader acts on each exactly once however often it
// reads the object.
func RolloutPatch(action, reason string, now time.Time) map[string]string {
	id := now.UTC().Format(time.RFC3339Nano)
	switch action {
	case "pause":
		return map[string]string{rollout.PausedKey: "true", rollout.PauseReasonKey: reason}
	case "resume":
		return map[string]string{rollout.PausedKey: "false", rollout.RequestKey: rollout.ActionResume + "/" + id}
	case "promote", "abort", "retry":
		return map[string]string{rollout.RequestKey: action + "/" + id}
	}
	return nil
}

// RequestRollout writes an operator's command to the status object: the
// one code path of the rollout commands and the dashboard's buttons.
func RequestRollout(ctx context.Context, s *rollout.KubeStatus, action, reason string, now time.Time) error {
	patch := RolloutPatch(action, reason, now)
	if patch == nil {
		return fmt.Errorf("no rollout command %q", action)
	}
	return s.Save(ctx, patch)
}

// RolloutDoc is the -o json|yaml document of a status object's data.
func RolloutDoc(data map[string]string) RolloutDocument {
	st, ctl := rollout.Decode(data)
	mst, _ := migrate.DecodeStatus(data)
	return RolloutDocument{Rollout: st, Paused: ctl.Paused, PauseReason: ctl.PauseReason,
		PendingRequest: PendingRequest(st, ctl), Migration: mst}
}

// RolloutFrame is one screen of the watch: the status as `rollout status`
// prints it, and the last read's error if it failed (the frame before it
// stays, so a blip of the API server does not blank the view).
func RolloutFrame(data map[string]string, readErr error, pal Palette) string {
	var b bytes.Buffer
	st, ctl := rollout.Decode(data)
	mst, mctl := migrate.DecodeStatus(data)
	writeRolloutStatus(&b, st, ctl, mst, mctl, pal)
	if readErr != nil {
		fmt.Fprintf(&b, "Reading the status object failed, retrying: %v\n", readErr)
	}
	return b.String()
}

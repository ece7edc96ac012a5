package policy

import "testing"

func TestWorkloadOf(t *testing.T) {
	hash := func(v string) map[string]string { return map[string]string{"pod-template-hash": v} }
	tests := []struct {
		name     string
		s        PodSubject
		kind     string
		unitName string
		ok       bool
	}{
		{"Deployment", PodSubject{Owner: &Owner{"ReplicaSet", "web-5d8f7c9b6"}, Labels: hash("5d8f7c9b6")}, "Deployment", "web", true},
		{"Deployment with dashes in its name", PodSubject{Owner: &Owner{"ReplicaSet", "my-web-app-7c9b6"}, Labels: hash("7c9b6")}, "Deployment", "my-web-app", true},
		{"ReplicaSet whose name lacks the hash", PodSubject{Owner: &Owner{"ReplicaSet", "web-abc"}, Labels: hash("xyz")}, "ReplicaSet", "web-abc", true},
		{"hash without its dash", PodSubject{Owner: &Owner{"ReplicaSet", "webabc"}, Labels: hash("abc")}, "ReplicaSet", "webabc", true},
		{"name that is only the hash", PodSubject{Owner: &Owner{"ReplicaSet", "-abc"}, Labels: hash("abc")}, "ReplicaSet", "-abc", true},
		{"bare ReplicaSet", PodSubject{Owner: &Owner{"ReplicaSet", "cache"}}, "ReplicaSet", "cache", true},
		{"empty hash label", PodSubject{Owner: &Owner{"ReplicaSet", "cache-"}, Labels: hash("")}, "ReplicaSet", "cache-", true},
		{"Argo Rollout", PodSubject{
			Owner:  &Owner{"ReplicaSet", "checkout-6b7c8d9f5"},
			Labels: map[string]string{"rollouts-pod-template-hash": "6b7c8d9f5"},
		}, "Rollout", "checkout", true},
		{"CronJob", PodSubject{Owner: &Owner{"Job", "backup-29012345"}}, "CronJob", "backup", true},
		{"CronJob with dashes in its name", PodSubject{Owner: &Owner{"Job", "nightly-db-backup-290123456"}}, "CronJob", "nightly-db-backup", true},
		{"Job with a short number", PodSubject{Owner: &Owner{"Job", "backup-1234567"}}, "Job", "backup-1234567", true},
		{"Job", PodSubject{Owner: &Owner{"Job", "migrate"}}, "Job", "migrate", true},
		{"Job named only digits", PodSubject{Owner: &Owner{"Job", "12345678"}}, "Job", "12345678", true},
		{"Job named dash digits", PodSubject{Owner: &Owner{"Job", "-12345678"}}, "Job", "-12345678", true},
		{"StatefulSet", PodSubject{Name: "db-0", Owner: &Owner{"StatefulSet", "db"}}, "StatefulSet", "db", true},
		{"DaemonSet", PodSubject{GenerateName: "agent-", Owner: &Owner{"DaemonSet", "agent"}}, "DaemonSet", "agent", true},
		{"custom controller", PodSubject{Owner: &Owner{"CloneSet", "shop"}}, "CloneSet", "shop", true},
		{"bare named pod", PodSubject{Name: "debug"}, "Pod", "debug", true},
		{"bare generateName pod", PodSubject{GenerateName: "debug-"}, "", "", false},
		{"owner without a kind", PodSubject{GenerateName: "x-", Owner: &Owner{"", "x"}}, "", "", false},
		{"owner without a name, named pod", PodSubject{Name: "x", Owner: &Owner{"Job", ""}}, "Pod", "x", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kind, name, ok := WorkloadOf(tt.s)
			if kind != tt.kind || name != tt.unitName || ok != tt.ok {
				t.Errorf("WorkloadOf = (%q, %q, %v), want (%q, %q, %v)", kind, name, ok, tt.kind, tt.unitName, tt.ok)
			}
		})
	}
}

package policy

// Template-hash labels that controllers put on the pods of a ReplicaSet.
const (
	labelPodTemplateHash      = "pod-template-hash"
	labelRolloutsTemplateHash = "rollouts-pod-template-hash"
)

// cronJobSuffixDigits is the shortest suffix that marks a CronJob's Job: the
// controller names Jobs <cronjob>-<scheduled time in minutes since the
// epoch>, eight digits since 1989.
const cronJobSuffixDigits = 8

// WorkloadOf returns the routing unit of a pod: kind and name, ok=false
// when the pod has no stable unit. At admission a generateName pod has no
// name, so the unit is derived from its controller ownerReference and the
// template-hash labels its controller copies onto it.
func WorkloadOf(s PodSubject) (kind, name string, ok bool) {
	o := s.Owner
	if o == nil || o.Kind == "" || o.Name == "" {
		if s.Name == "" {
			return "", "", false
		}
		return "Pod", s.Name, true
	}
	switch o.Kind {
	case "ReplicaSet":
		// Argo Rollouts first: its label is the more specific claim.
		if n, ok := trimHash(o.Name, s.Labels[labelRolloutsTemplateHash]); ok {
			return "Rollout", n, true
		}
		if n, ok := trimHash(o.Name, s.Labels[labelPodTemplateHash]); ok {
			return "Deployment", n, true
		}
	case "Job":
		if n, ok := trimCronSuffix(o.Name); ok {
			return "CronJob", n, true
		}
	}
	return o.Kind, o.Name, true
}

// trimHash returns name without its "-<hash>" suffix; ok is false when the
// hash is empty or the name does not end with it.
func trimHash(name, hash string) (string, bool) {
	cut := len(name) - len(hash) - 1
	if hash == "" || cut < 1 || name[cut] != '-' || name[cut+1:] != hash {
		return "", false
	}
	return name[:cut], true
}

// trimCronSuffix returns a Job name without a trailing "-<8 or more digits>".
func trimCronSuffix(name string) (string, bool) {
	i := len(name)
	for i > 0 && name[i-1] >= '0' && name[i-1] <= '9' {
		i--
	}
	if len(name)-i < cronJobSuffixDigits || i < 2 || name[i-1] != '-' {
		return "", false
	}
	return name[:i-1], true
}

package policy

import (
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/util/validation"
)

const (
	// maxSeed matches the longest Kubernetes object name, so any name an
	// operator might reuse as a seed fits.
	maxSeed = 253
	// weightTolerance absorbs float rounding in weights like 33.3+33.3+33.4.
	weightTolerance = 1e-6
	noTargets       = "at least one target is required"
)

func granularityReason(g string) string {
	switch Granularity(g) {
	case GranularityNamespace, GranularityWorkload, GranularityPod:
		return ""
	}
	return "must be one of namespace, workload, pod"
}

func seedReason(s string) string {
	if n := utf8.RuneCountInString(s); n > maxSeed {
		return "must be at most " + strconv.Itoa(maxSeed) + " characters, not " + strconv.Itoa(n)
	}
	return ""
}

// revisionReason insists on a valid label value because the revision is
// written verbatim as the istio.io/rev label; the API server would reject
// the admission patch otherwise.
func revisionReason(rev string) string {
	if rev == "" {
		return "required"
	}
	if msgs := validation.IsValidLabelValue(rev); len(msgs) > 0 {
		return "invalid label value " + strconv.Quote(rev) + ": " + strings.Join(msgs, "; ")
	}
	return ""
}

func weightReason(w float64) string {
	if w < 0 || w > 100 {
		return "must be between 0 and 100"
	}
	return ""
}

func namespaceReason(ns string) string {
	if msgs := validation.IsDNS1123Label(ns); len(msgs) > 0 {
		return "invalid namespace name " + strconv.Quote(ns) + ": " + strings.Join(msgs, "; ")
	}
	return ""
}

func gatewaysReason(g string) string {
	switch GatewayMode(g) {
	case "", GatewaysExclude, GatewaysRoute:
		return ""
	}
	return "must be one of exclude, route"
}

// checkTargets applies the rules that span targets: unique revisions and
// weights summing to 100. The sum is checked only when every weight is
// valid, since a broken weight already has its own message.
func checkTargets(errs *ValidationError, path string, targets []Target, revisionOK []bool, weightsOK bool) {
	first := make(map[string]int, len(targets))
	for i, t := range targets {
		if !revisionOK[i] {
			continue
		}
		if j, dup := first[t.Revision]; dup {
			errs.add(path+"["+strconv.Itoa(i)+"].revision", "duplicate of "+path+"["+strconv.Itoa(j)+"]")
			continue
		}
		first[t.Revision] = i
	}
	if !weightsOK {
		return
	}
	var sum float64
	for _, t := range targets {
		sum += t.Weight
	}
	if math.Abs(sum-100) > weightTolerance {
		// Rounded so float noise (99.89999999999999) does not reach the operator.
		shown := strconv.FormatFloat(math.Round(sum*1e6)/1e6, 'f', -1, 64)
		errs.add(path, "weights sum to "+shown+", must sum to 100")
	}
}

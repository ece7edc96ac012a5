package policy

import (
	"fmt"
	"math"
	"slices"
	"strconv"

	yaml "go.yaml.in/yaml/v2"
)

// Fields each mapping may hold, as operators write them.
var (
	policyFields     = []string{"granularity", "seed", "targets", "namespaces", "gateways", "gatewayRevision", "migration", "rollout", "namespaceFailover"}
	targetFields     = []string{"revision", "weight"}
	namespacesFields = []string{"exclude"}
)

// decodePolicy walks a generic decode of the document against the schema.
// The stock strict decoders stop at the first unknown field and do not say
// where it is; this walk reports every one with its full path. Null values
// count as absent, as they do for Kubernetes objects.
func decodePolicy(doc yaml.MapSlice) (*Policy, ValidationError) {
	var errs ValidationError
	p := &Policy{}
	var haveGranularity, haveTargets bool
	var rollout *rawRollout
	seen := make(map[string]bool, len(doc))
	for _, it := range doc {
		key, path, ok := fieldKey(&errs, "", it.Key, policyFields, seen)
		if !ok || it.Value == nil {
			continue
		}
		switch key {
		case "granularity":
			haveGranularity = true
			if s, ok := asString(&errs, path, it.Value); ok {
				if r := granularityReason(s); r != "" {
					errs.add(path, r)
				}
				p.Granularity = Granularity(s)
			}
		case "seed":
			if s, ok := asString(&errs, path, it.Value); ok {
				if r := seedReason(s); r != "" {
					errs.add(path, r)
				}
				p.Seed = s
			}
		case "targets":
			haveTargets = true
			p.Targets = decodeTargets(&errs, path, it.Value)
		case "namespaces":
			p.Namespaces = decodeNamespaces(&errs, path, it.Value)
		case "gateways":
			if s, ok := asString(&errs, path, it.Value); ok {
				if r := gatewaysReason(s); r != "" {
					errs.add(path, r)
				}
				p.Gateways = GatewayMode(s)
			}
		case "gatewayRevision":
			if s, ok := asString(&errs, path, it.Value); ok {
				if r := revisionReason(s); r != "" {
					errs.add(path, r)
				}
				p.GatewayRevision = s
			}
		case "migration":
			p.Migration = decodeMigration(&errs, path, it.Value)
		case "rollout":
			rollout = decodeRollout(&errs, path, it.Value)
		case "namespaceFailover":
			f := decodeNamespaceFailover(&errs, path, it.Value)
			p.NamespaceFailover = &f
		}
	}
	if !haveGranularity {
		errs.add("granularity", "required (one of namespace, workload, pod)")
	}
	if !haveTargets {
		errs.add("targets", noTargets)
	}
	if p.Gateways == "" {
		p.Gateways = GatewaysExclude
	}
	if rollout != nil && p.Targets != nil {
		// Targets broken or missing have their own messages already.
		p.Rollout = resolveRollout(&errs, p, rollout)
	}
	if p.Rollout != nil && p.Migration == nil {
		// A rollout moves running workloads at each step: without a
		// migration block it migrates at the default pace.
		m := DefaultMigration()
		m.Enabled = true
		p.Migration = &m
	}
	if p.GatewayRevision != "" && p.Gateways == GatewaysRoute {
		errs.add("gatewayRevision", "only with gateways: exclude (gateways: route places gateway pods like any other pod)")
	}
	p.excluded = make(map[string]struct{}, len(p.Namespaces.Exclude))
	for _, ns := range p.Namespaces.Exclude {
		p.excluded[ns] = struct{}{}
	}
	return p, errs
}

// decodeTargets decodes and validates the target list. Targets keep their
// list index, so messages can name them, even when an entry is broken.
func decodeTargets(errs *ValidationError, path string, v any) []Target {
	list, ok := asList(errs, path, v)
	if !ok {
		return nil
	}
	if len(list) == 0 {
		errs.add(path, noTargets)
		return nil
	}
	targets := make([]Target, len(list))
	revisionOK := make([]bool, len(list))
	weightsOK := true
	for i, item := range list {
		tpath := path + "[" + strconv.Itoa(i) + "]"
		m, ok := asMapping(errs, tpath, item)
		if !ok {
			weightsOK = false
			continue
		}
		var haveRevision, haveWeight bool
		seen := make(map[string]bool, len(m))
		for _, it := range m {
			key, fpath, ok := fieldKey(errs, tpath, it.Key, targetFields, seen)
			if !ok || it.Value == nil {
				continue
			}
			switch key {
			case "revision":
				haveRevision = true
				if s, ok := asString(errs, fpath, it.Value); ok {
					targets[i].Revision = s
					if r := revisionReason(s); r != "" {
						errs.add(fpath, r)
					} else {
						revisionOK[i] = true
					}
				}
			case "weight":
				haveWeight = true
				w, ok := asNumber(errs, fpath, it.Value)
				if ok {
					if r := weightReason(w); r != "" {
						errs.add(fpath, r)
						ok = false
					}
					targets[i].Weight = w
				}
				weightsOK = weightsOK && ok
			}
		}
		if !haveRevision {
			errs.add(tpath+".revision", "required")
		}
		if !haveWeight {
			errs.add(tpath+".weight", "required")
			weightsOK = false
		}
	}
	checkTargets(errs, path, targets, revisionOK, weightsOK)
	return targets
}

// decodeNamespaces decodes and validates the namespaces block.
func decodeNamespaces(errs *ValidationError, path string, v any) Namespaces {
	var out Namespaces
	m, ok := asMapping(errs, path, v)
	if !ok {
		return out
	}
	seen := make(map[string]bool, len(m))
	for _, it := range m {
		key, fpath, ok := fieldKey(errs, path, it.Key, namespacesFields, seen)
		if !ok || it.Value == nil {
			continue
		}
		if key == "exclude" {
			out.Exclude = decodeExclude(errs, fpath, it.Value)
		}
	}
	return out
}

// decodeExclude decodes namespaces.exclude, keeping only valid names so a
// rejected entry can never reach the exclude set.
func decodeExclude(errs *ValidationError, path string, v any) []string {
	list, ok := asList(errs, path, v)
	if !ok {
		return nil
	}
	var out []string
	first := make(map[string]int, len(list))
	for i, item := range list {
		ipath := path + "[" + strconv.Itoa(i) + "]"
		s, ok := asString(errs, ipath, item)
		if !ok {
			continue
		}
		if r := namespaceReason(s); r != "" {
			errs.add(ipath, r)
			continue
		}
		if j, dup := first[s]; dup {
			errs.add(ipath, "duplicate of "+path+"["+strconv.Itoa(j)+"]")
			continue
		}
		first[s] = i
		out = append(out, s)
	}
	return out
}

// fieldKey returns a mapping key and its path; ok is false, with the problem
// recorded, for a key outside known and for a key given twice. YAML forbids
// repeats, but the decoder that keeps key order does not check for them.
func fieldKey(errs *ValidationError, parent string, k any, known []string, seen map[string]bool) (key, path string, ok bool) {
	key, isString := k.(string)
	switch {
	case k == nil:
		key = "null"
	case !isString:
		key = fmt.Sprint(k)
	}
	name := key
	if name == "" {
		// An empty key still needs a visible name in the message.
		name = `""`
	}
	path = name
	if parent != "" {
		path = parent + "." + name
	}
	if !isString || !slices.Contains(known, key) {
		errs.add(path, "unknown field")
		return key, path, false
	}
	if seen[key] {
		errs.add(path, "duplicate field")
		return key, path, false
	}
	seen[key] = true
	return key, path, true
}

func asString(errs *ValidationError, path string, v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case bool, int, int64, uint64, float64:
		// YAML reads 1.25 or yes as a number or a boolean; quoting keeps it text.
		errs.add(path, "must be a string (quote the value)")
	default:
		errs.add(path, "must be a string")
	}
	return "", false
}

func asNumber(errs *ValidationError, path string, v any) (float64, bool) {
	switch v := v.(type) {
	case int:
		return float64(v), true
	case int64:
		return float64(v), true
	case uint64:
		return float64(v), true
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			errs.add(path, "must be a finite number")
			return 0, false
		}
		return v, true
	}
	errs.add(path, "must be a number")
	return 0, false
}

func asList(errs *ValidationError, path string, v any) ([]any, bool) {
	if l, ok := v.([]any); ok {
		return l, true
	}
	errs.add(path, "must be a list")
	return nil, false
}

func asMapping(errs *ValidationError, path string, v any) (yaml.MapSlice, bool) {
	if m, ok := v.(yaml.MapSlice); ok {
		return m, true
	}
	errs.add(path, "must be a mapping")
	return nil, false
}

package podgen

import (
	"encoding/json"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func intOrString(port int) intstr.IntOrString { return intstr.FromInt32(int32(port)) }

// listKeys are the associative-list keys of the pod fields the generator
// sets, as server-side apply records them ("k:{...}" entries); any other
// list is atomic.
var listKeys = map[string][]string{
	"containers":      {"name"},
	"env":             {"name"},
	"ports":           {"containerPort", "protocol"},
	"volumeMounts":    {"mountPath"},
	"volumes":         {"name"},
	"ownerReferences": {"uid"},
}

// fieldsV1 renders the field set the controller manager owns after
// creating pod: what it set in metadata, and all of spec.
func fieldsV1(pod *corev1.Pod) *metav1.FieldsV1 {
	raw, err := json.Marshal(pod)
	if err != nil {
		panic(err)
	}
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil {
		panic(err)
	}
	meta := obj["metadata"].(map[string]any)
	owned := map[string]any{}
	for _, k := range []string{"generateName", "labels", "annotations", "ownerReferences"} {
		if v, ok := meta[k]; ok {
			owned[k] = v
		}
	}
	set := map[string]any{
		"f:metadata": members(owned, false),
		"f:spec":     members(obj["spec"].(map[string]any), false),
	}
	out, err := json.Marshal(set)
	if err != nil {
		panic(err)
	}
	return &metav1.FieldsV1{Raw: out}
}

// members renders an object's fields; self adds the "." entry that marks
// the object itself as owned.
func members(obj map[string]any, self bool) map[string]any {
	out := map[string]any{}
	if self {
		out["."] = map[string]any{}
	}
	for k, v := range obj {
		out["f:"+k] = field(k, v)
	}
	return out
}

func field(name string, v any) map[string]any {
	switch v := v.(type) {
	case map[string]any:
		return members(v, true)
	case []any:
		keys, ok := listKeys[name]
		if !ok {
			return map[string]any{}
		}
		out := map[string]any{".": map[string]any{}}
		for _, item := range v {
			// An item's entry lists its key fields too ("f:name" under
			// k:{"name":...}), as apply records them.
			m, _ := item.(map[string]any)
			out[itemKey(m, keys)] = members(m, true)
		}
		return out
	}
	return map[string]any{}
}

// itemKey renders a list item's key as `k:{"name":"app"}`.
func itemKey(item map[string]any, keys []string) string {
	sorted := append([]string(nil), keys...)
	sort.Strings(sorted)
	parts := make([]string, 0, len(sorted))
	for _, k := range sorted {
		kb, _ := json.Marshal(k)
		vb, _ := json.Marshal(item[k])
		parts = append(parts, string(kb)+":"+string(vb))
	}
	return "k:{" + strings.Join(parts, ",") + "}"
}

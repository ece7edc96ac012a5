package policy

import (
	"strconv"
	"strings"
)

// Gate queries have a template language of their own, not Go's
// text/template: a query is parsed when the policy is, on every replica
// and in the policy webhook, so whatever the language allows runs there.
// text/template allowed {{define}} and {{template}}, and forty templates
// each calling the one below twice made a 2.8 KB policy take 2^40 calls
// to check. This language has three placeholders and nothing else, so
// parsing a query is one pass over it and rendering one is a copy.
const (
	// MaxQueryBytes bounds one query as written. PromQL gates are a line
	// or two; the largest in docs/rollout.md is under 300 bytes.
	MaxQueryBytes = 4096
	// MaxRenderedQueryBytes bounds a query once its placeholders are
	// filled: the execution budget, checked at parse time with values of
	// the longest a revision name can be, and again at each render.
	MaxRenderedQueryBytes = 16 << 10
	// maxPlaceholderValue is the longest value a placeholder takes: a
	// revision or tag name is a label value, at most 63 characters.
	maxPlaceholderValue = 63
)

// placeholders are the names a query may use, in QueryVars' order.
var placeholders = [...]string{"Revision", "Canary", "Stable"}

const placeholderList = "{{ .Revision }}, {{ .Canary }} and {{ .Stable }}"

// queryTemplate is a parsed query: literal text and placeholders in
// order.
type queryTemplate struct {
	parts []queryPart
}

// queryPart is a literal (field < 0) or the placeholder placeholders[field].
type queryPart struct {
	text  string
	field int
}

// parseQueryTemplate parses s, or says why it is not a query: the reason
// is a field message, without the field.
func parseQueryTemplate(s string) (*queryTemplate, string) {
	if len(s) > MaxQueryBytes {
		return nil, "is " + strconv.Itoa(len(s)) + " bytes, larger than the " + strconv.Itoa(MaxQueryBytes) + "-byte limit"
	}
	t := &queryTemplate{}
	rest := s
	for {
		i := strings.Index(rest, "{{")
		if i < 0 {
			t.literal(rest)
			break
		}
		text, action := rest[:i], rest[i+2:]
		end := strings.Index(action, "}}")
		if end < 0 {
			return nil, `"{{" at byte ` + strconv.Itoa(len(s)-len(rest)+i) + " is never closed by \"}}\""
		}
		action, rest = action[:end], action[end+2:]
		// The trim markers of text/template, which queries written for it
		// may use: "{{- " drops the whitespace before, " -}}" after.
		if strings.HasPrefix(action, "- ") {
			text = strings.TrimRight(text, " \t\r\n")
			action = action[1:]
		}
		trimAfter := strings.HasSuffix(action, " -")
		if trimAfter {
			action = action[:len(action)-1]
		}
		t.literal(text)
		field, why := placeholder(strings.TrimSpace(action))
		if why != "" {
			return nil, why
		}
		t.parts = append(t.parts, queryPart{field: field})
		if trimAfter {
			rest = strings.TrimLeft(rest, " \t\r\n")
		}
	}
	long := strings.Repeat("x", maxPlaceholderValue)
	if _, err := t.render(QueryVars{Revision: long, Canary: long, Stable: long}); err != nil {
		return nil, err.Error() + " (with placeholders of 63 characters, the longest a revision name can be)"
	}
	return t, ""
}

func (t *queryTemplate) literal(s string) {
	if s != "" {
		t.parts = append(t.parts, queryPart{text: s, field: -1})
	}
}

// placeholder returns the index of the placeholder an action names, or
// the reason it names none.
func placeholder(action string) (int, string) {
	for i, p := range placeholders {
		if action == "."+p {
			return i, ""
		}
	}
	word, _, _ := strings.Cut(action, " ")
	switch {
	case word == "define" || word == "template" || word == "block":
		return 0, "{{ " + word + " }} is not allowed: a gate query may hold only the placeholders " + placeholderList
	case strings.HasPrefix(action, ".") && !strings.ContainsAny(action, " \t\r\n|("):
		return 0, "unknown placeholder {{ " + action + " }} (placeholders are " + placeholderList + ")"
	}
	if len(action) > 40 {
		action = action[:40] + "..."
	}
	return 0, "{{ " + action + " }} is not a placeholder: a gate query may hold only " + placeholderList +
		" (no functions, pipelines or other template actions)"
}

// render fills t's placeholders, refusing an answer over the budget
// before building it.
func (t *queryTemplate) render(v QueryVars) (string, error) {
	values := [len(placeholders)]string{v.Revision, v.Canary, v.Stable}
	n := 0
	for _, p := range t.parts {
		if p.field < 0 {
			n += len(p.text)
		} else {
			n += len(values[p.field])
		}
	}
	if n > MaxRenderedQueryBytes {
		return "", renderError("rendered query would be " + strconv.Itoa(n) + " bytes, more than the " +
			strconv.Itoa(MaxRenderedQueryBytes) + "-byte budget")
	}
	var b strings.Builder
	b.Grow(n)
	for _, p := range t.parts {
		if p.field < 0 {
			b.WriteString(p.text)
		} else {
			b.WriteString(values[p.field])
		}
	}
	return b.String(), nil
}

// renderError is a query that cannot be rendered.
type renderError string

func (e renderError) Error() string { return string(e) }

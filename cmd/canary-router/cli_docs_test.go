package main

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/canary-router/canary-router/cmd/canary-router/report"
	"github.com/canary-router/canary-router/cmd/canary-router/simulate"
	"github.com/canary-router/canary-router/cmd/canary-router/uninstall"
	"github.com/canary-router/canary-router/cmd/canary-router/validate"
	"github.com/canary-router/canary-router/controller/migrate"
)

// outputDocuments are the -o json|yaml documents, by the heading of their
// section in docs/cli.md.
var outputDocuments = map[string]any{
	"status":    report.StatusReport{},
	"simulate":  simulate.Output{},
	"validate":  validate.Output{},
	"uninstall": uninstall.Plan{},
	"migrate":   migrate.Plan{},
}

// TestOutputFieldsDocumented keeps docs/cli.md true: every field of every
// -o document is listed, in backquotes, in its command's section. A field
// renamed in code fails here until the docs say so (and the rename is a
// breaking change for scripts).
func TestOutputFieldsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/cli.md")
	if err != nil {
		t.Fatal(err)
	}
	for command, v := range outputDocuments {
		section := docSection(string(doc), "### "+command)
		if section == "" {
			t.Errorf("docs/cli.md has no section ### %s", command)
			continue
		}
		for _, path := range jsonPaths(reflect.TypeOf(v), "", map[reflect.Type]bool{}) {
			if !strings.Contains(section, "`"+path+"`") {
				t.Errorf("docs/cli.md, ### %s: field `%s` is not listed", command, path)
			}
		}
	}
}

// docSection returns the text from heading to the next heading of the
// same or a higher level.
func docSection(doc, heading string) string {
	i := strings.Index(doc, "\n"+heading+"\n")
	if i < 0 {
		return ""
	}
	rest := doc[i+len(heading)+2:]
	if j := strings.Index(rest, "\n### "); j >= 0 {
		rest = rest[:j]
	}
	if j := strings.Index(rest, "\n## "); j >= 0 {
		rest = rest[:j]
	}
	return rest
}

// jsonPaths lists the dotted JSON paths of t's fields: "[]" after a list,
// "{key}" after a map, embedded structs flattened as encoding/json does.
// A struct type met before is not listed again (the docs say "as
// `result`").
func jsonPaths(t reflect.Type, prefix string, seen map[reflect.Type]bool) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Slice:
		return jsonPaths(t.Elem(), prefix+"[]", seen)
	case reflect.Map:
		return jsonPaths(t.Elem(), prefix+"{key}", seen)
	case reflect.Struct:
		if seen[t] {
			return nil
		}
		seen[t] = true
	default:
		return nil
	}
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		if f.Anonymous && name == "" {
			out = append(out, jsonPaths(f.Type, prefix, seen)...)
			continue
		}
		if name == "" {
			name = f.Name
		}
		p := name
		if prefix != "" {
			p = prefix + "." + name
		}
		out = append(out, p)
		out = append(out, jsonPaths(f.Type, p, seen)...)
	}
	return out
}

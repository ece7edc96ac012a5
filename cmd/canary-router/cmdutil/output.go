package cmdutil

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/pflag"
	"sigs.k8s.io/yaml"
)

// Output formats of -o. The documents' field names are the JSON tags of
// the output types, listed in docs/cli.md; YAML uses the same names.
const (
	OutputTable = "table"
	OutputText  = "text"
	OutputJSON  = "json"
	OutputYAML  = "yaml"
)

// OutputValue is the -o/--output flag: a string limited to the formats a
// command prints, so a wrong one fails as a flag (exit 2) and completion
// offers the right ones.
type OutputValue struct {
	p       *string
	allowed []string
}

var _ pflag.Value = (*OutputValue)(nil)

// BindOutput binds -o/--output to p; the first format is the default.
func BindOutput(fs *pflag.FlagSet, p *string, formats ...string) {
	*p = formats[0]
	fs.VarP(&OutputValue{p: p, allowed: formats}, "output", "o", "output format: "+strings.Join(formats, ", "))
}

// Allowed lists the formats, for completion.
func (o *OutputValue) Allowed() []string { return o.allowed }

func (o *OutputValue) String() string { return *o.p }

func (o *OutputValue) Type() string { return "format" }

func (o *OutputValue) Set(s string) error {
	if !slices.Contains(o.allowed, s) {
		return fmt.Errorf("must be one of %s", strings.Join(o.allowed, ", "))
	}
	*o.p = s
	return nil
}

// WriteDocument prints v as indented JSON, or as YAML with the same field
// names (sigs.k8s.io/yaml goes through the JSON tags).
func WriteDocument(w io.Writer, format string, v any) error {
	if format == OutputYAML {
		b, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

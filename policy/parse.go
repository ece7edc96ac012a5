package policy

import (
	"bytes"
	"errors"
	"io"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v2"
)

// documentField names the whole document in errors that have no field.
const documentField = "policy.yaml"

// Parse decodes a YAML (or JSON) policy document strictly, applies defaults
// (gateways: exclude) and validates it. On failure it returns a
// ValidationError listing every problem found, not just the first.
func Parse(data []byte) (*Policy, error) {
	doc, err := readDocument(data)
	if err != nil {
		return nil, err
	}
	p, errs := decodePolicy(doc)
	if len(errs) > 0 {
		return nil, errs
	}
	return p, nil
}

// readDocument returns the single YAML mapping in data. It uses yaml.v2,
// the YAML 1.1 dialect kubectl and sigs.k8s.io/yaml speak, and decodes into
// MapSlice so fields keep their order and errors follow the document.
// JSON is YAML, so JSON documents need no path of their own.
func readDocument(data []byte) (yaml.MapSlice, error) {
	if len(data) > MaxSize {
		return nil, docError("document is " + strconv.Itoa(len(data)) + " bytes, larger than the " +
			strconv.Itoa(MaxSize) + "-byte limit")
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var first document
	docs := 0
	for {
		var d document
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, docError("invalid YAML: " + strings.TrimPrefix(err.Error(), "yaml: "))
		}
		if !d.present {
			// An empty document, such as after a trailing "---", holds nothing.
			continue
		}
		if docs == 0 {
			first = d
		}
		docs++
	}
	switch {
	case docs == 0:
		return nil, docError("document is empty")
	case docs > 1:
		return nil, docError("contains " + strconv.Itoa(docs) + " YAML documents, expected one")
	case !first.mapping:
		return nil, docError("must be a mapping of policy fields (granularity, seed, targets, namespaces, gateways)")
	}
	return first.fields, nil
}

// document is one YAML document. It checks the top-level kind itself: a
// MapSlice target would accept a sequence of mappings as MapItems.
type document struct {
	present bool // false for an empty (null) document
	mapping bool
	fields  yaml.MapSlice
}

// UnmarshalYAML implements yaml.Unmarshaler. yaml.v2 lets it decode the
// same node twice: once to learn its kind, once in order.
func (d *document) UnmarshalYAML(unmarshal func(any) error) error {
	d.present = true
	var v any
	if err := unmarshal(&v); err != nil {
		return err
	}
	if _, ok := v.(map[any]any); !ok {
		return nil
	}
	d.mapping = true
	return unmarshal(&d.fields)
}

func docError(reason string) ValidationError {
	return ValidationError{{Field: documentField, Reason: reason}}
}

package policy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// configMapKey is the key of the policy ConfigMap that holds the policy.
const configMapKey = documentField

// Document returns the policy document in a file as people hand it over:
// a bare policy, the policy ConfigMap's manifest (what GitOps repositories
// and deploy/policy hold), or a multi-document file with one ConfigMap
// carrying a policy.yaml key among other objects. where names the document
// the policy came from, for messages ("" for a bare policy).
func Document(data []byte) (doc []byte, where string, err error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs [][]byte
	for {
		d, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, "", fmt.Errorf("reading YAML documents: %w", err)
		}
		if len(bytes.TrimSpace(stripComments(d))) > 0 {
			docs = append(docs, d)
		}
	}
	if len(docs) == 0 {
		return data, "", nil // Parse says what is missing
	}
	var found []byte
	objects := 0
	for i, d := range docs {
		var head struct {
			Kind     string                `json:"kind"`
			Metadata struct{ Name string } `json:"metadata"`
			Data     map[string]string     `json:"data"`
		}
		if err := yaml.Unmarshal(d, &head); err != nil || head.Kind == "" {
			continue
		}
		objects++
		if head.Kind != "ConfigMap" {
			continue
		}
		p, ok := head.Data[configMapKey]
		if !ok {
			continue
		}
		if found != nil {
			return nil, "", fmt.Errorf("more than one ConfigMap with a %s key; give one policy per file", configMapKey)
		}
		found, where = []byte(p), fmt.Sprintf("ConfigMap %s (document %d), data.%s", head.Metadata.Name, i+1, configMapKey)
	}
	if objects == 0 {
		// No Kubernetes object: a bare policy, or documents Parse
		// explains (it refuses more than one).
		if len(docs) == 1 {
			return docs[0], "", nil
		}
		return data, "", nil
	}
	if found == nil {
		return nil, "", fmt.Errorf("no policy found: expected a policy document, or a ConfigMap with a %s key", configMapKey)
	}
	return found, where, nil
}

// stripComments drops whole-line comments, so a document of comments only
// counts as empty.
func stripComments(d []byte) []byte {
	var out []byte
	for _, line := range bytes.Split(d, []byte("\n")) {
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] != '#' {
			out = append(out, line...)
			out = append(out, '\n')
		}
	}
	return out
}

package policy

import (
	"strings"
	"testing"
)

func TestDocument(t *testing.T) {
	const bare = "granularity: pod\ntargets:\n  - revision: stable\n    weight: 100\n"
	configMap := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: canary-router-policy\n  namespace: canary-router-system\ndata:\n  policy.yaml: |\n" +
		indent(bare, "    ")
	for _, tc := range []struct {
		name      string
		in        string
		want      string
		wantWhere string
		wantErr   string
	}{
		{name: "bare policy", in: bare, want: bare},
		{name: "bare policy after a comment and a separator", in: "# mine\n---\n" + bare, want: bare},
		{name: "ConfigMap manifest", in: configMap, want: bare, wantWhere: "ConfigMap canary-router-policy (document 1), data.policy.yaml"},
		{name: "ConfigMap among other objects", in: "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: x\n---\n" + configMap,
			want: bare, wantWhere: "ConfigMap canary-router-policy (document 2), data.policy.yaml"},
		{name: "ConfigMap without the key", in: "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: other\ndata:\n  a: b\n",
			wantErr: "no policy found"},
		{name: "two policies", in: configMap + "---\n" + configMap, wantErr: "more than one ConfigMap"},
		{name: "empty file is left to Parse", in: "", want: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc, where, err := Document([]byte(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.TrimSpace(string(doc)) != strings.TrimSpace(tc.want) || where != tc.wantWhere {
				t.Fatalf("got %q from %q, want %q from %q", doc, where, tc.want, tc.wantWhere)
			}
			if tc.want != "" {
				if _, err := Parse(doc); err != nil {
					t.Fatalf("the document does not parse: %v", err)
				}
			}
		})
	}
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i := range lines {
		lines[i] = prefix + lines[i]
	}
	return strings.Join(lines, "\n") + "\n"
}

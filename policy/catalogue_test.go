package policy

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/invalid/*.want from the current messages")

// TestInvalidCatalogue: every document in testdata/invalid is rejected
// with exactly the messages in its .want file, one per line. The same
// files drive the validate command's test and the e2e test, so the
// messages an operator sees are pinned in one place.
func TestInvalidCatalogue(t *testing.T) {
	docs, err := filepath.Glob("testdata/invalid/*.yaml")
	if err != nil || len(docs) < 25 {
		t.Fatalf("catalogue has %d documents (%v), want at least 25", len(docs), err)
	}
	for _, doc := range docs {
		name := strings.TrimSuffix(filepath.Base(doc), ".yaml")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(doc)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Parse(data)
			if err == nil {
				t.Fatal("accepted")
			}
			verr, ok := err.(ValidationError)
			if !ok {
				t.Fatalf("error %T %v is not a ValidationError", err, err)
			}
			var got strings.Builder
			for _, fe := range verr {
				got.WriteString(fe.Error() + "\n")
			}
			wantFile := strings.TrimSuffix(doc, ".yaml") + ".want"
			if *update {
				if err := os.WriteFile(wantFile, []byte(got.String()), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(wantFile)
			if err != nil {
				t.Fatalf("%v (run go test -run TestInvalidCatalogue -update)", err)
			}
			if got.String() != string(want) {
				t.Errorf("messages\n got: %s\nwant: %s", got.String(), want)
			}
		})
	}
}

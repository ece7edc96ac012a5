package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestDockerfileMatchesMakeImage checks what can be checked here without a
// container engine: the Dockerfile's final stage and `make image` build the
// same filesystem (one static binary at /canary-router on an empty base)
// and the same config (user, entrypoint, cmd, ports).
func TestDockerfileMatchesMakeImage(t *testing.T) {
	df, err := os.ReadFile("../../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	stages := strings.Split(string(df), "\nFROM ")
	final := "FROM " + stages[len(stages)-1]
	want := []string{
		"FROM scratch\n",
		"COPY --from=build --chmod=0755 /src/bin/canary-router /canary-router\n",
		"USER 65532:65532\n",
		"EXPOSE 9443 8081\n",
		`ENTRYPOINT ["/canary-router"]` + "\n",
		`CMD ["serve"]` + "\n",
	}
	for _, w := range want {
		if !strings.Contains(final, w) {
			t.Errorf("Dockerfile final stage lacks %q", w)
		}
	}
	if n := strings.Count(final, "\nCOPY ") + strings.Count(final, "\nADD ") + strings.Count(final, "\nRUN "); n != 1 {
		t.Errorf("Dockerfile final stage has %d COPY/ADD/RUN lines, want the one binary", n)
	}
	// The build stage must build with `make build`, whose flags
	// TestStaticBinary checks on the binary itself.
	if !strings.Contains(string(df), "make build VERSION=") {
		t.Error("Dockerfile build stage no longer runs `make build`")
	}

	mk, err := os.ReadFile("../../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	target := regexp.MustCompile(`(?s)\nimage: .*?\n\n`).Find(mk)
	if target == nil {
		t.Fatal("Makefile has no image target")
	}
	for _, w := range []string{
		"-binary bin/canary-router", "-path /canary-router", "-cmd serve",
		"-user 65532:65532", "-port 9443/tcp", "-port 8081/tcp",
	} {
		if !strings.Contains(string(target), w) {
			t.Errorf("make image lacks %q", w)
		}
	}
	if strings.Contains(string(target), "-entrypoint") {
		t.Error("make image sets -entrypoint: the Dockerfile's is the binary's path alone")
	}
	// Both images carry the same OCI labels: every key make image sets is
	// a LABEL of the final stage, with the same value where it is fixed.
	labels := regexp.MustCompile(`-label "?(org\.opencontainers\.image\.[a-z]+)=([^"\n\\]*)`).FindAllStringSubmatch(string(target), -1)
	if len(labels) < 4 {
		t.Fatalf("make image sets %d OCI labels, want at least title, description, version and revision", len(labels))
	}
	for _, l := range labels {
		key, value := l[1], strings.TrimSpace(l[2])
		if !strings.Contains(final, key+"=") {
			t.Errorf("Dockerfile final stage lacks LABEL %s", key)
			continue
		}
		if !strings.Contains(value, "$") && !strings.Contains(final, key+`="`+value+`"`) {
			t.Errorf("Dockerfile LABEL %s differs from make image's %q", key, value)
		}
	}
}

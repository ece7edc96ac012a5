package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestOneVersion holds every place that names the router's release to the
// file VERSION, so a release is one edit and `make image`, the Dockerfile,
// the manifests and the chart name the same tag for the same source.
func TestOneVersion(t *testing.T) {
	read := func(path ...string) string {
		b, err := os.ReadFile(filepath.Join(append([]string{".."}, path...)...))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	version := strings.TrimSpace(read("VERSION"))
	if !regexp.MustCompile(`^v\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$`).MatchString(version) {
		t.Fatalf("VERSION holds %q, want a tag such as v0.1.0", version)
	}
	image := "ghcr.io/canary-router/canary-router:" + version
	cases := []struct {
		where, text, want string
	}{
		{"deploy/base/kustomization.yaml newTag", read("deploy", "base", "kustomization.yaml"), "newTag: " + version + "\n"},
		{"deploy/install.yaml image", read("deploy", "install.yaml"), "image: " + image + "\n"},
		{"Chart.yaml appVersion", read("deploy", "helm", "canary-router", "Chart.yaml"), `appVersion: "` + strings.TrimPrefix(version, "v") + `"`},
		{"Dockerfile build stage", read("Dockerfile"), "ARG VERSION=" + version + "\n"},
		{"Makefile", read("Makefile"), "VERSION ?= $(shell cat VERSION"},
	}
	for _, c := range cases {
		if !strings.Contains(c.text, c.want) {
			t.Errorf("%s does not name the release: want %q", c.where, c.want)
		}
	}
	// Every image reference in the rendered install is this release.
	for _, m := range regexp.MustCompile(`ghcr\.io/canary-router/canary-router:(\S+)`).FindAllStringSubmatch(read("deploy", "install.yaml"), -1) {
		if m[1] != version {
			t.Errorf("deploy/install.yaml names tag %s, VERSION is %s", m[1], version)
		}
	}
	if n := strings.Count(read("Dockerfile"), "ARG VERSION="+version+"\n"); n != 2 {
		t.Errorf("Dockerfile sets ARG VERSION=%s in %d stages, want both", version, n)
	}
}

package main

import (
	"archive/tar"
	"bytes"
	"debug/buildinfo"
	"debug/elf"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// buildPause compiles the pause command the way the Makefile builds the
// router: static, -trimpath, stripped.
func buildPause(t *testing.T, dir string) string {
	t.Helper()
	out := filepath.Join(dir, "pause")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, "./pause")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./pause: %v\n%s", err, b)
	}
	return out
}

func writeArchive(t *testing.T, binary, out string) string {
	t.Helper()
	var stdout bytes.Buffer
	args := []string{
		"-binary", binary, "-path", "/pause", "-tag", "registry.k8s.io/pause:3.6",
		"-cmd", "--flag", "-port", "9443/tcp", "-created", "1796221965",
		"-label", "org.opencontainers.image.title=pause",
		"-label", "org.opencontainers.image.version=3.6",
		"-o", out,
	}
	if err := run(args, &stdout); err != nil {
		t.Fatalf("run: %v", err)
	}
	f := strings.Fields(stdout.String())
	if len(f) != 3 || !strings.HasPrefix(f[2], "sha256:") {
		t.Fatalf("want `<archive> <ref> <digest>`, got %q", stdout.String())
	}
	return f[2]
}

// TestReproducible builds the binary twice in different folders and the
// image from each: the digests must match, or `make image` on one commit
// would publish a different image every time.
func TestReproducible(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	d1 := writeArchive(t, buildPause(t, a), filepath.Join(a, "img.tar"))
	d2 := writeArchive(t, buildPause(t, b), filepath.Join(b, "img.tar"))
	if d1 != d2 {
		t.Fatalf("digests differ between two builds of the same source: %s vs %s", d1, d2)
	}
	f1, _ := os.ReadFile(filepath.Join(a, "img.tar"))
	f2, _ := os.ReadFile(filepath.Join(b, "img.tar"))
	if !bytes.Equal(f1, f2) {
		t.Error("archives differ byte for byte though the digests match")
	}
}

// TestArchiveContents reads the archive back as an importer would and
// checks every config field the manifests rely on.
func TestArchiveContents(t *testing.T) {
	dir := t.TempDir()
	bin := buildPause(t, dir)
	out := filepath.Join(dir, "img.tar")
	digest := writeArchive(t, bin, out)
	img := readLayout(t, out)
	if _, err := tarball.ImageFromPath(out, nil); err != nil {
		t.Errorf("manifest.json (docker load, crane push): %v", err)
	}
	if d, _ := img.Digest(); d.String() != digest {
		t.Errorf("archive digest %s, tool printed %s", d, digest)
	}
	if mt, _ := img.MediaType(); mt != types.OCIManifestSchema1 {
		t.Errorf("manifest media type %s, want OCI", mt)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if c.User != "65532:65532" {
		t.Errorf("user %q, want 65532:65532 (deploy/base/deployment.yaml runAsUser)", c.User)
	}
	if !reflect.DeepEqual(c.Entrypoint, []string{"/pause"}) || !reflect.DeepEqual(c.Cmd, []string{"--flag"}) {
		t.Errorf("entrypoint %q cmd %q", c.Entrypoint, c.Cmd)
	}
	if _, ok := c.ExposedPorts["9443/tcp"]; !ok {
		t.Errorf("exposed ports %v", c.ExposedPorts)
	}
	if c.Labels["org.opencontainers.image.title"] != "pause" || c.Labels["org.opencontainers.image.version"] != "3.6" ||
		c.Labels[labelCreated] != "2026-12-02T14:32:45Z" {
		t.Errorf("labels %v", c.Labels)
	}
	if cf.Created.Unix() != 1796221965 || cf.OS != "linux" {
		t.Errorf("created %v os %q", cf.Created, cf.OS)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("want exactly one layer, got %d (%v)", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	hdr, err := tr.Next()
	if err != nil {
		t.Fatal(err)
	}
	if hdr.Name != "pause" || hdr.Mode != 0o755 || hdr.Uid != 0 || hdr.ModTime.Unix() != 1796221965 {
		t.Errorf("layer entry %q mode %o uid %d mtime %v", hdr.Name, hdr.Mode, hdr.Uid, hdr.ModTime)
	}
	inImage, _ := io.ReadAll(tr)
	onDisk, _ := os.ReadFile(bin)
	if !bytes.Equal(inImage, onDisk) {
		t.Error("the layer's file is not the binary")
	}
	if _, err := tr.Next(); err != io.EOF {
		t.Errorf("layer holds more than the binary: %v", err)
	}
}

// TestStaticBinary checks what the image depends on: a binary with no
// dynamic loader (the image has no libc) built with the Makefile's flags.
// CANARY_ROUTER_BINARY names another binary to check, e.g. bin/canary-router.
func TestStaticBinary(t *testing.T) {
	bin := os.Getenv("CANARY_ROUTER_BINARY")
	if bin == "" {
		bin = buildPause(t, t.TempDir())
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s is dynamically linked: an empty-base image cannot run it", bin)
		}
	}
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	if settings["CGO_ENABLED"] != "0" || settings["-trimpath"] != "true" {
		t.Errorf("build settings %v: want CGO_ENABLED=0 and -trimpath", settings)
	}
}

// readLayout extracts the archive and reads it as an OCI layout, as
// containerd's importer does, so the digest checked is the one a node's
// image store ends up with.
func readLayout(t *testing.T, archive string) v1.Image {
	t.Helper()
	dir := t.TempDir()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, hdr.Name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil || len(im.Manifests) != 1 {
		t.Fatalf("index: %v %v", im, err)
	}
	if got := im.Manifests[0].Annotations[annotationContainerdName]; got != "registry.k8s.io/pause:3.6" {
		t.Errorf("containerd image name %q", got)
	}
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

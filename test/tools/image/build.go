package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Spec describes a single-binary image: an empty base plus one layer that
// holds the binary, and the config that runs it.
type Spec struct {
	// Binary is the path of the static executable to put in the image.
	Binary string
	// Path is where the binary lives in the image, e.g. /canary-router.
	Path string
	// Entrypoint and Cmd become the config's Entrypoint and Cmd.
	Entrypoint []string
	Cmd        []string
	// User is the config's User, numeric uid:gid so a kubelet can check
	// runAsNonRoot without an /etc/passwd in the image.
	User string
	// Ports become ExposedPorts, e.g. "9443/tcp".
	Ports []string
	// Labels become the config's Labels (org.opencontainers.image.*).
	Labels map[string]string
	// Created is the one timestamp in the image: the config's created
	// field, its history entry and the layer's file times. Builds of one
	// commit pass that commit's time, so the digest repeats.
	Created time.Time
	// OS and Arch of the binary (the config's os and architecture).
	OS, Arch string
}

// Build returns the image Spec describes. It reads the binary and nothing
// else from the host, so two builds from identical binaries and specs have
// the same manifest digest.
func Build(s Spec) (v1.Image, error) {
	if s.Binary == "" || s.Path == "" || len(s.Entrypoint) == 0 {
		return nil, fmt.Errorf("image: binary, path and entrypoint are required")
	}
	data, err := os.ReadFile(s.Binary)
	if err != nil {
		return nil, err
	}
	layerTar, err := singleFileTar(s.Path, data, s.Created)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	// OCI media types throughout: containerd, kind and registries all take
	// them, and the manifest then says what it is.
	base := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	img, err := mutate.Append(base, mutate.Addendum{
		Layer: layer,
		History: v1.History{
			Created:   v1.Time{Time: s.Created},
			CreatedBy: "canary-router test/tools/image: COPY " + path.Base(s.Binary) + " " + s.Path,
		},
	})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = s.OS, s.Arch
	cf.Created = v1.Time{Time: s.Created}
	cf.Config.User = s.User
	cf.Config.Entrypoint = s.Entrypoint
	cf.Config.Cmd = s.Cmd
	cf.Config.WorkingDir = "/"
	cf.Config.Labels = s.Labels
	if len(s.Ports) > 0 {
		cf.Config.ExposedPorts = map[string]struct{}{}
		for _, p := range s.Ports {
			cf.Config.ExposedPorts[p] = struct{}{}
		}
	}
	return mutate.ConfigFile(img, cf)
}

// singleFileTar is a layer with one root-owned, world-executable file and
// no directory entries: the runtime creates / itself. Every header field
// is fixed, so the layer's digest depends on the file's bytes only.
func singleFileTar(name string, data []byte, mtime time.Time) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hdr := &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     strings.TrimPrefix(name, "/"),
		Mode:     0o755,
		Size:     int64(len(data)),
		ModTime:  mtime.UTC(),
		Format:   tar.FormatPAX,
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return nil, err
	}
	if _, err := tw.Write(data); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// parseLabels turns k=v pairs into a map, refusing duplicates so a typo in
// the Makefile cannot silently override a label.
func parseLabels(pairs []string) (map[string]string, error) {
	labels := map[string]string{}
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("label %q: want key=value", p)
		}
		if _, dup := labels[k]; dup {
			return nil, fmt.Errorf("label %q given twice", k)
		}
		labels[k] = v
	}
	return labels, nil
}

// sortedKeys is for stable log output.
func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

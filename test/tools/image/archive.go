package main

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Annotations an importer reads the image's name from: containerd's
// (`ctr images import` names the image after it) and the OCI one.
const (
	annotationContainerdName = "io.containerd.image.name"
	annotationRefName        = "org.opencontainers.image.ref.name"
)

// WriteArchive writes img as a tar of an OCI image layout (oci-layout,
// index.json, blobs/sha256/...) that also carries a Docker manifest.json
// pointing at the same blobs, the shape `docker save` has written since
// Docker 25.
//
// An OCI layout, not go-containerregistry's tarball.Write: importers of a
// bare `docker save` tarball rebuild the manifest themselves, so the digest
// in the store would not be the digest this tool printed. From an OCI
// layout, containerd (`ctr images import`, `kind load image-archive`)
// keeps the manifest as written. manifest.json keeps `docker load` and
// `crane push <archive>` working; crane rebuilds the manifest there, so to
// publish the same digest, push the extracted layout folder instead.
//
// Every tar header is fixed (mode, owner, the image's created time), so
// the archive repeats byte for byte along with the digest.
func WriteArchive(path string, ref name.Tag, img v1.Image) (err error) {
	manifest, err := img.RawManifest()
	if err != nil {
		return err
	}
	manifestDigest, err := img.Digest()
	if err != nil {
		return err
	}
	mediaType, err := img.MediaType()
	if err != nil {
		return err
	}
	configName, err := img.ConfigName()
	if err != nil {
		return err
	}
	config, err := img.RawConfigFile()
	if err != nil {
		return err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	mtime := cf.Created.Time
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	index := v1.IndexManifest{
		SchemaVersion: 2,
		MediaType:     types.OCIImageIndex,
		Manifests: []v1.Descriptor{{
			MediaType: mediaType,
			Size:      int64(len(manifest)),
			Digest:    manifestDigest,
			Annotations: map[string]string{
				annotationContainerdName: ref.Name(),
				annotationRefName:        ref.TagStr(),
			},
		}},
	}
	indexJSON, err := json.Marshal(index)
	if err != nil {
		return err
	}
	docker := []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}{{Config: blobPath(configName), RepoTags: []string{ref.Name()}}}

	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	tw := tar.NewWriter(f)
	add := func(name string, data []byte) error {
		return writeFile(tw, name, data, mtime)
	}
	if err := add("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return err
	}
	if err := add(blobPath(configName), config); err != nil {
		return err
	}
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return err
		}
		if err := addLayer(tw, blobPath(d), l, mtime); err != nil {
			return err
		}
		docker[0].Layers = append(docker[0].Layers, blobPath(d))
	}
	if err := add(blobPath(manifestDigest), manifest); err != nil {
		return err
	}
	if err := add("index.json", indexJSON); err != nil {
		return err
	}
	dockerJSON, err := json.Marshal(docker)
	if err != nil {
		return err
	}
	if err := add("manifest.json", dockerJSON); err != nil {
		return err
	}
	return tw.Close()
}

func blobPath(d v1.Hash) string { return "blobs/" + d.Algorithm + "/" + d.Hex }

func writeFile(tw *tar.Writer, name string, data []byte, mtime time.Time) error {
	if err := tw.WriteHeader(fixedHeader(name, int64(len(data)), mtime)); err != nil {
		return err
	}
	_, err := tw.Write(data)
	return err
}

func addLayer(tw *tar.Writer, name string, l v1.Layer, mtime time.Time) error {
	size, err := l.Size()
	if err != nil {
		return err
	}
	rc, err := l.Compressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := tw.WriteHeader(fixedHeader(name, size, mtime)); err != nil {
		return err
	}
	n, err := io.Copy(tw, rc)
	if err == nil && n != size {
		err = fmt.Errorf("layer %s: wrote %d bytes, manifest says %d", name, n, size)
	}
	return err
}

func fixedHeader(name string, size int64, mtime time.Time) *tar.Header {
	return &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     name,
		Mode:     0o644,
		Size:     size,
		ModTime:  mtime.UTC(),
		Format:   tar.FormatPAX,
	}
}

// Command image builds a single-binary container image archive without a
// container engine: an empty base plus one layer holding a static binary,
// with OCI media types and a fixed timestamp, so every build of one commit
// has the same digest. `make image` builds the router's image with it, and
// the real-node tests (test/node) build a pause image the same way.
//
// The archive is a tar of an OCI image layout with a Docker manifest.json
// beside it (see WriteArchive): `ctr images import`, `kind load
// image-archive`, `docker load` and `crane push` all take it.
//
//	image -binary bin/canary-router -path /canary-router -entrypoint /canary-router \
//	  -cmd serve -user 65532:65532 -port 9443/tcp -tag ghcr.io/canary-router/canary-router:v0.1.0 \
//	  -label org.opencontainers.image.version=v0.1.0 -created 1796221965 -o bin/canary-router-image.tar
//
// It prints the manifest digest, which the archive's image has in any
// registry it is pushed to.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
)

const labelCreated = "org.opencontainers.image.created"

// listFlag collects a repeated flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("image", flag.ContinueOnError)
	var (
		s                       Spec
		entrypoint, cmd, labels listFlag
		ports                   listFlag
		tag, out, created       string
	)
	fs.StringVar(&s.Binary, "binary", "", "static executable to put in the image")
	fs.StringVar(&s.Path, "path", "", "its path in the image (default /<binary name>)")
	fs.Var(&entrypoint, "entrypoint", "entrypoint element (repeat for each; default: -path)")
	fs.Var(&cmd, "cmd", "cmd element (repeat for each)")
	fs.StringVar(&s.User, "user", "65532:65532", "config user, numeric uid:gid")
	fs.Var(&ports, "port", "exposed port, e.g. 9443/tcp (repeatable)")
	fs.Var(&labels, "label", "config label key=value (repeatable)")
	fs.StringVar(&tag, "tag", "", "image reference recorded in the archive, e.g. ghcr.io/canary-router/canary-router:v0.1.0")
	fs.StringVar(&out, "o", "", "archive to write")
	fs.StringVar(&created, "created", os.Getenv("SOURCE_DATE_EPOCH"), "image timestamp in Unix seconds (default $SOURCE_DATE_EPOCH, else 0); pass the commit time")
	fs.StringVar(&s.OS, "os", "linux", "the binary's OS")
	fs.StringVar(&s.Arch, "arch", runtime.GOARCH, "the binary's architecture")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if s.Binary == "" || tag == "" || out == "" {
		return errors.New("-binary, -tag and -o are required")
	}
	if s.Path == "" {
		s.Path = "/" + baseName(s.Binary)
	}
	s.Entrypoint, s.Cmd, s.Ports = entrypoint, cmd, ports
	if len(s.Entrypoint) == 0 {
		s.Entrypoint = []string{s.Path}
	}
	var err error
	if s.Labels, err = parseLabels(labels); err != nil {
		return err
	}
	secs := int64(0)
	if created != "" {
		if secs, err = strconv.ParseInt(created, 10, 64); err != nil {
			return fmt.Errorf("-created %q: want Unix seconds", created)
		}
	}
	s.Created = time.Unix(secs, 0).UTC()
	// The OCI label is the same instant as the config's created field,
	// never the wall clock, or the digest would change on every build.
	if _, ok := s.Labels[labelCreated]; !ok {
		s.Labels[labelCreated] = s.Created.Format(time.RFC3339)
	}
	ref, err := name.NewTag(tag, name.WeakValidation)
	if err != nil {
		return err
	}
	img, err := Build(s)
	if err != nil {
		return err
	}
	// Write next to the target and rename, so an interrupted build never
	// leaves a truncated archive that a later import would choke on.
	tmp := out + ".tmp"
	if err := WriteArchive(tmp, ref, img); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, out); err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s %s %s\n", out, ref.Name(), digest)
	return nil
}

func baseName(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}

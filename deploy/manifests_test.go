// Package deploy holds the kustomize base and overlays; its tests render
// them with the built kubectl and hold the result to the install contract
// (deploy/README.md). test/install applies them to a real control plane.
package deploy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
)

// kubectl returns the built kubectl (`make tools`). Missing, it fails the
// test, except under -short, where unit runs on a machine without the
// control plane build skip.
func kubectl(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("CANARY_ROUTER_BIN_DIR")
	if dir == "" {
		dir = filepath.Join("..", "_bin")
	}
	bin := filepath.Join(dir, "kubectl")
	if _, err := os.Stat(bin); err != nil {
		if testing.Short() {
			t.Skipf("%s missing (run `make tools`); skipped in -short mode", bin)
		}
		t.Fatalf("%s missing: run `make tools` to build it", bin)
	}
	return bin
}

// render runs `kubectl kustomize dir`.
func render(t *testing.T, dir string) []byte {
	t.Helper()
	cmd := exec.Command(kubectl(t), "kustomize", dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, stderr.String())
	}
	return out
}

// overlays lists every overlay directory, so a new one is checked without
// editing this file.
func overlays(t *testing.T) []string {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join("overlays", "*", "kustomization.yaml"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no overlays found: %v", err)
	}
	for i, d := range dirs {
		dirs[i] = filepath.Dir(d)
	}
	return dirs
}

func TestInstallYAMLIsCurrent(t *testing.T) {
	committed, err := os.ReadFile("install.yaml")
	if err != nil {
		t.Fatalf("deploy/install.yaml: %v (run `make manifests`)", err)
	}
	fresh := render(t, filepath.Join("overlays", "default"))
	// The leading comment lines are the header `make manifests` writes.
	body := committed
	for bytes.HasPrefix(body, []byte("#")) {
		_, body, _ = bytes.Cut(body, []byte("\n"))
	}
	if bytes.Equal(body, fresh) {
		return
	}
	got, want := strings.Split(string(body), "\n"), strings.Split(string(fresh), "\n")
	for i := 0; i < len(got) || i < len(want); i++ {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			t.Fatalf("deploy/install.yaml is stale: run `make manifests` and commit the result.\n"+
				"first difference at body line %d:\n  committed: %q\n  rendered:  %q", i+1, g, w)
		}
	}
}

// objects decodes a rendered stream into typed objects.
func objects(t *testing.T, stream []byte) []runtime.Object {
	t.Helper()
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(stream)))
	var out []runtime.Object
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(doc, nil, nil)
		if err != nil {
			// Kinds client-go does not know (cert-manager's) are not
			// part of these checks.
			if runtime.IsNotRegisteredError(err) {
				continue
			}
			t.Fatalf("decoding %q: %v", firstLine(doc), err)
		}
		out = append(out, obj)
	}
}

func firstLine(b []byte) string {
	l, _, _ := bytes.Cut(b, []byte("\n"))
	return string(l)
}

func find[T runtime.Object](objs []runtime.Object, name string, nameOf func(T) string) (T, bool) {
	for _, o := range objs {
		if v, ok := o.(T); ok && nameOf(v) == name {
			return v, true
		}
	}
	var zero T
	return zero, false
}

func TestOverlaysKeepTheProductionShape(t *testing.T) {
	for _, dir := range overlays(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			objs := objects(t, render(t, dir))
			checkNamespace(t, objs)
			checkDeployment(t, objs)
			checkWebhooks(t, objs, filepath.Base(dir))
			checkRBAC(t, objs)
			checkNoPolicy(t, objs)
		})
	}
}

func checkNamespace(t *testing.T, objs []runtime.Object) {
	ns, ok := find(objs, "canary-router-system", func(n *corev1.Namespace) string { return n.Name })
	if !ok {
		t.Fatal("no Namespace canary-router-system")
	}
	for _, mode := range []string{"enforce", "audit", "warn"} {
		if v := ns.Labels["pod-security.kubernetes.io/"+mode]; v != "restricted" {
			t.Errorf("namespace label pod-security.kubernetes.io/%s = %q, want restricted", mode, v)
		}
	}
}

func checkDeployment(t *testing.T, objs []runtime.Object) {
	d, ok := find(objs, "canary-router", func(d *appsv1.Deployment) string { return d.Name })
	if !ok {
		t.Fatal("no Deployment canary-router")
	}
	if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 {
		t.Errorf("replicas %v, want at least 2", d.Spec.Replicas)
	}
	ps := d.Spec.Template.Spec
	if sc := ps.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot ||
		sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext %+v: want runAsNonRoot and seccomp RuntimeDefault", sc)
	}
	if a := ps.Affinity; a == nil || a.PodAntiAffinity == nil || len(a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution) == 0 {
		t.Error("no preferred pod anti-affinity")
	}
	if len(ps.TopologySpreadConstraints) == 0 {
		t.Error("no topology spread constraints")
	}
	if len(ps.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(ps.Containers))
	}
	c := ps.Containers[0]
	sc := c.SecurityContext
	if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" {
		t.Errorf("container securityContext %+v: want no privilege escalation, read-only root, drop ALL", sc)
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := c.Resources.Requests[r]; !ok {
			t.Errorf("no %s request", r)
		}
		if _, ok := c.Resources.Limits[r]; !ok {
			t.Errorf("no %s limit", r)
		}
	}
	for name, p := range map[string]*corev1.Probe{"/healthz": c.LivenessProbe, "/readyz": c.ReadinessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != name || p.HTTPGet.Port.String() != "health" {
			t.Errorf("probe for %s: %+v, want an HTTP GET on the health port", name, p)
		}
	}
	checkVolumesReadable(t, ps)
	var podNS bool
	for _, e := range c.Env {
		podNS = podNS || (e.Name == "POD_NAMESPACE" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil &&
			e.ValueFrom.FieldRef.FieldPath == "metadata.namespace")
	}
	if !podNS {
		t.Error("POD_NAMESPACE does not come from the downward API")
	}
}

// checkVolumesReadable fails for a Secret or ConfigMap volume the non-root
// router could not read: the kubelet writes the files owned by root, so
// they must be world-readable, or group-readable with the pod's fsGroup
// owning them. kwok never mounts volumes, so only this test catches it.
func checkVolumesReadable(t *testing.T, ps corev1.PodSpec) {
	t.Helper()
	fsGroup := ps.SecurityContext != nil && ps.SecurityContext.FSGroup != nil
	for _, v := range ps.Volumes {
		var mode *int32
		switch {
		case v.Secret != nil:
			mode = v.Secret.DefaultMode
		case v.ConfigMap != nil:
			mode = v.ConfigMap.DefaultMode
		default:
			continue
		}
		m := int32(0o644) // the API's default
		if mode != nil {
			m = *mode
		}
		if m&0o004 == 0 && (!fsGroup || m&0o040 == 0) {
			t.Errorf("volume %s: mode %#o is not readable by a non-root user without fsGroup and group read", v.Name, m)
		}
	}
}

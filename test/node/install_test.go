package node

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/canary-router/canary-router/test/fakeistio"
)

const (
	routerNS   = "canary-router-system"
	managedNS  = "shop"
	shippedTag = "ghcr.io/canary-router/canary-router:v0.1.0"
)

// startIstio registers a stand-in non-revisioned Istio whose injector the
// apiserver (host namespace) and the router's pods (its injector check)
// both reach: it listens on the host end of the node's veth.
func startIstio(t *testing.T, ctx context.Context) *fakeistio.Injectors {
	t.Helper()
	if env.istio != nil {
		return env.istio
	}
	inj, err := fakeistio.Start(env.c.CA)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := env.c.CA.IssueServing("istiod", nil, []net.IP{net.ParseIP(hostIP)})
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", hostIP+":0", &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: inj, ReadHeaderTimeout: 5 * time.Second}
	// Shared by the suite's tests; it ends with the test process.
	go func() { _ = srv.Serve(ln) }()
	mwc := fakeistio.InjectorConfig("https://"+ln.Addr().String(), env.c.CA.CertPEM, "default", "")
	if _, err := env.c.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, mwc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := fakeistio.RegisterIstiod(ctx, env.c.Client, "default"); err != nil {
		t.Fatal(err)
	}
	// The stand-in's sidecar image is the pause image under Istio's name,
	// so injected pods run without a pull.
	if _, err := env.node.Ctr(ctx, "images", "tag", SandboxImage, "docker.io/istio/proxyv2:default"); err != nil {
		t.Fatal(err)
	}
	env.istio = inj
	return inj
}

// TestInstallYAMLOnRealNode applies deploy/install.yaml as shipped (only
// the image tag changed to the local one) and checks the router running
// as users run it: its pods Ready under the manifests' security context
// and probes, the apiserver calling it through its Service, a Deployment
// routed and injected, zero failed pod creations through a rolling update
// and a pod deletion, and the PodDisruptionBudget refusing an eviction.
func TestInstallYAMLOnRealNode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	inj := startIstio(t, ctx)

	shipped, err := os.ReadFile(filepath.Join("..", "..", "deploy", "install.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(string(shipped), "image: "+shippedTag+"\n") != 1 {
		t.Fatalf("deploy/install.yaml does not name %s once", shippedTag)
	}
	local := strings.Replace(string(shipped), shippedTag, imageA, 1)
	manifest := filepath.Join(env.dir, "install.yaml")
	if err := os.WriteFile(manifest, []byte(local), 0o600); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	kubectl(t, ctx, "apply", "-f", manifest)
	router(t, ctx, "init", "--apply")
	waitRollout(t, ctx, 2, imageA)
	t.Logf("install.yaml applied, 2 replicas Ready in %s", time.Since(began).Round(10*time.Millisecond))
	checkPodShape(t, ctx, shippedDeployment(t, shipped))

	// The apiserver calls the namespace webhook through the Service: the
	// router turns istio-injection=enabled into its opt-in label.
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: managedNS, Labels: map[string]string{"istio-injection": "enabled"}}}
	got, err := env.c.Client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Labels["canary-router.io/injection"] != "enabled" || got.Labels["istio-injection"] != "" {
		t.Fatalf("namespace %s labels %v: the router's namespace webhook was not called through its Service", managedNS, got.Labels)
	}
	checkRoutedDeployment(t, ctx, inj)

	// Continuous pod creation through a rolling update to a new tag, then
	// through the deletion of one router pod: no creation may fail.
	load := startLoad(ctx, managedNS)
	kubectl(t, ctx, "-n", routerNS, "set", "image", "deployment/canary-router", "router="+imageB)
	began = time.Now()
	waitRollout(t, ctx, 2, imageB)
	t.Logf("rolling update to %s done in %s", imageB, time.Since(began).Round(10*time.Millisecond))
	pods := routerPods(t, ctx)
	if err := env.c.Client.CoreV1().Pods(routerNS).Delete(ctx, pods[0].Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	began = time.Now()
	waitReplaced(t, ctx, pods[0].Name)
	t.Logf("router pod %s deleted and replaced in %s", pods[0].Name, time.Since(began).Round(10*time.Millisecond))
	created, failed := load.stop()
	t.Logf("pods created during the rollout and the deletion: %d, failed: %d", created, len(failed))
	if len(failed) > 0 || created == 0 {
		t.Errorf("%d of %d pod creations failed: %v", len(failed), created+len(failed), failed)
	}

	checkEvictionBlocked(t, ctx)
}

func kubectl(t *testing.T, ctx context.Context, args ...string) []byte {
	t.Helper()
	out, err := env.c.Kubectl(ctx, args...)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return out
}

func router(t *testing.T, ctx context.Context, args ...string) []byte {
	t.Helper()
	out, err := exec.CommandContext(ctx, env.router, append(args, "--kubeconfig", env.c.Kubeconfig)...).CombinedOutput()
	if err != nil {
		t.Fatalf("canary-router %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// shippedDeployment decodes the router's Deployment from install.yaml.
func shippedDeployment(t *testing.T, manifest []byte) *appsv1.Deployment {
	t.Helper()
	for _, doc := range strings.Split(string(manifest), "\n---\n") {
		if !strings.Contains(doc, "\nkind: Deployment\n") {
			continue
		}
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode([]byte(doc), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		return obj.(*appsv1.Deployment)
	}
	t.Fatal("install.yaml has no Deployment")
	return nil
}

func routerPods(t *testing.T, ctx context.Context) []corev1.Pod {
	t.Helper()
	list, err := env.c.Client.CoreV1().Pods(routerNS).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=canary-router,app.kubernetes.io/component=webhook"})
	if err != nil {
		t.Fatal(err)
	}
	var live []corev1.Pod
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil {
			live = append(live, p)
		}
	}
	return live
}

// waitRollout waits until the Deployment has exactly n updated, ready
// replicas running image and no old ones.
func waitRollout(t *testing.T, ctx context.Context, n int32, image string) {
	t.Helper()
	poll(t, ctx, 4*time.Minute, func() (bool, string) {
		d, err := env.c.Client.AppsV1().Deployments(routerNS).Get(ctx, "canary-router", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		s := d.Status
		done := d.Spec.Template.Spec.Containers[0].Image == image && s.ObservedGeneration >= d.Generation &&
			s.UpdatedReplicas == n && s.ReadyReplicas == n && s.Replicas == n && s.AvailableReplicas == n
		return done, fmt.Sprintf("status %+v", s)
	})
}

func waitReplaced(t *testing.T, ctx context.Context, gone string) {
	t.Helper()
	poll(t, ctx, 2*time.Minute, func() (bool, string) {
		pods := routerPods(t, ctx)
		ready := 0
		for _, p := range pods {
			if p.Name == gone {
				return false, gone + " still there"
			}
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
					ready++
				}
			}
		}
		return ready == 2, fmt.Sprintf("%d ready", ready)
	})
}

func poll(t *testing.T, ctx context.Context, d time.Duration, check func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, last := check()
		if ok {
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil || crashLooping(ctx) {
			t.Fatalf("gave up after %s: %s\nkubelet log:\n%s\nrouter logs:\n%s", time.Since(deadline.Add(-d)).Round(time.Second), last,
				tail(env.node.path("logs", "kubelet.log"), 10), routerLogs())
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// checkPodShape: the running pods carry the shipped securityContext and
// probes, and the router's process really runs as 65532.
func checkPodShape(t *testing.T, ctx context.Context, want *appsv1.Deployment) {
	t.Helper()
	wantSpec := want.Spec.Template.Spec
	wc := wantSpec.Containers[0]
	for _, p := range routerPods(t, ctx) {
		c := p.Spec.Containers[0]
		if !reflect.DeepEqual(p.Spec.SecurityContext, wantSpec.SecurityContext) {
			t.Errorf("pod %s securityContext %+v, shipped %+v", p.Name, p.Spec.SecurityContext, wantSpec.SecurityContext)
		}
		if !reflect.DeepEqual(c.SecurityContext, wc.SecurityContext) {
			t.Errorf("pod %s container securityContext %+v, shipped %+v", p.Name, c.SecurityContext, wc.SecurityContext)
		}
		for _, pr := range []struct{ live, shipped *corev1.Probe }{{c.ReadinessProbe, wc.ReadinessProbe}, {c.LivenessProbe, wc.LivenessProbe}} {
			if want := defaultedProbe(pr.shipped); !reflect.DeepEqual(pr.live, want) {
				t.Errorf("pod %s probe %+v, shipped %+v", p.Name, pr.live, want)
			}
		}
		if p.Spec.NodeName != Name {
			t.Errorf("pod %s on node %q", p.Name, p.Spec.NodeName)
		}
	}
	uids := routerUIDs(t)
	if len(uids) != 2 {
		t.Errorf("found %d router processes on the node, want 2", len(uids))
	}
	for pid, uid := range uids {
		if uid != "65532" {
			t.Errorf("router process %d runs as uid %s, want 65532", pid, uid)
		}
	}
}

// routerUIDs maps each /canary-router process in the node's cgroups to its
// real uid.
func routerUIDs(t *testing.T) map[int]string {
	t.Helper()
	out := map[int]string{}
	for _, pid := range env.node.cgroupPids() {
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if !strings.HasPrefix(string(cmdline), "/canary-router\x00serve") {
			continue
		}
		status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		for _, line := range strings.Split(string(status), "\n") {
			if f := strings.Fields(line); len(f) > 1 && f[0] == "Uid:" {
				out[pid] = f[1]
			}
		}
	}
	return out
}

// crashLooping reports a router container that restarted twice: waiting
// longer only hides its log behind back-off.
func crashLooping(ctx context.Context) bool {
	list, err := env.c.Client.CoreV1().Pods(routerNS).List(ctx, metav1.ListOptions{})
	if err != nil {
		return false
	}
	for _, p := range list.Items {
		for _, cs := range p.Status.ContainerStatuses {
			if cs.RestartCount >= 2 {
				return true
			}
		}
	}
	return false
}

// routerLogs is the tail of every router container's log, read from the
// kubelet's pod log folder (the apiserver has no client certificate for
// the kubelet, so kubectl logs cannot fetch them).
func routerLogs() string {
	files, _ := filepath.Glob(env.node.path("pod-logs", routerNS+"_*", "router", "*.log"))
	var b strings.Builder
	for _, f := range files {
		fmt.Fprintf(&b, "--- %s\n%s\n", strings.TrimPrefix(f, env.node.Dir), tail(f, 15))
	}
	return b.String()
}

// defaultedProbe is a shipped probe with the fields the apiserver defaults
// filled in, as they appear on a live pod.
func defaultedProbe(p *corev1.Probe) *corev1.Probe {
	if p == nil {
		return nil
	}
	p = p.DeepCopy()
	if p.HTTPGet != nil && p.HTTPGet.Scheme == "" {
		p.HTTPGet.Scheme = corev1.URISchemeHTTP
	}
	if p.SuccessThreshold == 0 {
		p.SuccessThreshold = 1
	}
	return p
}

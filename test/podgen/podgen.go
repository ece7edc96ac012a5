// Package podgen builds realistic pod AdmissionReview bodies for the
// benchmarks and the load tool: Deployment pods as kube-apiserver sends
// them to a mutating webhook at CREATE (generateName, pod-template-hash,
// the ReplicaSet owner, the service-account volume and default
// tolerations added by earlier admission plugins, and the controller
// manager's managedFields entry).
package podgen

import (
	"encoding/json"
	"fmt"
	"sync"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
)

// Shape is a kind of pod, sized by the AdmissionReview body it makes.
type Shape struct {
	// Name is how benchmarks and flags refer to the shape.
	Name string
	// Containers is the number of containers.
	Containers int
	// ManagedFields adds the controller manager's managedFields entry.
	ManagedFields bool
	// Bytes is the body size to reach, padding the first container's
	// environment as needed.
	Bytes int
}

// The shapes the performance targets are stated for.
var (
	// Small is a one-container pod without managedFields: the 4 KB pod.
	Small = Shape{Name: "4KB", Containers: 1, Bytes: 4 << 10}
	// Managed is a two-container Deployment pod with its managedFields, the
	// size of a typical real pod review.
	Managed = Shape{Name: "6.5KB", Containers: 2, ManagedFields: true, Bytes: 6656}
	// Large is a four-container pod with a large environment.
	Large = Shape{Name: "64KB", Containers: 4, ManagedFields: true, Bytes: 64 << 10}
	// Shapes lists them in size order.
	Shapes = []Shape{Small, Managed, Large}
)

// ShapeByName returns the shape called name.
func ShapeByName(name string) (Shape, bool) {
	for _, s := range Shapes {
		if s.Name == name {
			return s, true
		}
	}
	return Shape{}, false
}

var padding sync.Map // Shape -> int: env vars to add to reach Bytes

// Pod returns pod number i of shape s, a pod of Deployment "web" in
// namespace "shop"; i varies its generated name and template hash only.
func Pod(s Shape, i int) *corev1.Pod {
	n, ok := padding.Load(s)
	if !ok {
		n = padFor(s)
		padding.Store(s, n)
	}
	return build(s, i, n.(int))
}

// padFor finds how many extra env vars bring the review to s.Bytes.
func padFor(s Shape) int {
	base := len(Review(build(s, 0, 0), "uid"))
	if base >= s.Bytes {
		return 0
	}
	per := float64(len(Review(build(s, 0, 10), "uid"))-base) / 10
	n := int(float64(s.Bytes-base) / per)
	for n > 0 && len(Review(build(s, 0, n), "uid")) > s.Bytes {
		n--
	}
	return n
}

func build(s Shape, i, pad int) *corev1.Pod {
	hash := fmt.Sprintf("5d8f7c%04x", i&0xffff)
	ctrl, block := true, true
	grace := int64(30)
	tolerate := int64(300)
	pod := &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: "web-" + hash + "-",
			Namespace:    "shop",
			Labels: map[string]string{
				"app": "web", "pod-template-hash": hash, "app.kubernetes.io/name": "web",
				"app.kubernetes.io/version": "1.4.2", "team": "storefront",
			},
			Annotations: map[string]string{
				"kubectl.kubernetes.io/restartedAt": "2025-11-20T10:31:07Z",
				"prometheus.io/scrape":              "true",
				"prometheus.io/port":                "9090",
			},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-" + hash,
				UID: "7f3b2c1e-9d4a-4b6f-8e2a-1c5d7e9f0a3b", Controller: &ctrl, BlockOwnerDeletion: &block,
			}},
		},
		Spec: corev1.PodSpec{
			Volumes: []corev1.Volume{
				{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
					LocalObjectReference: corev1.LocalObjectReference{Name: "web-config"}}}},
				serviceAccountVolume(),
			},
			RestartPolicy:                 corev1.RestartPolicyAlways,
			TerminationGracePeriodSeconds: &grace,
			DNSPolicy:                     corev1.DNSClusterFirst,
			ServiceAccountName:            "web",
			DeprecatedServiceAccount:      "web",
			SecurityContext:               &corev1.PodSecurityContext{},
			SchedulerName:                 "default-scheduler",
			Tolerations: []corev1.Toleration{
				{Key: "node.kubernetes.io/not-ready", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: &tolerate},
				{Key: "node.kubernetes.io/unreachable", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: &tolerate},
			},
		},
	}
	for c := range s.Containers {
		pod.Spec.Containers = append(pod.Spec.Containers, container(c))
	}
	for e := range pad {
		pod.Spec.Containers[0].Env = append(pod.Spec.Containers[0].Env,
			corev1.EnvVar{Name: fmt.Sprintf("FEATURE_FLAG_%03d", e), Value: fmt.Sprintf("enabled-for-tenant-%03d", e)})
	}
	if s.ManagedFields {
		created := metav1.NewTime(time.Date(2025, 11, 20, 10, 31, 9, 0, time.UTC))
		pod.ManagedFields = []metav1.ManagedFieldsEntry{{
			Manager: "kube-controller-manager", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "v1",
			Time: &created, FieldsType: "FieldsV1", FieldsV1: fieldsV1(pod),
		}}
	}
	return pod
}

var containerNames = []string{"app", "log-shipper", "cache", "metrics-exporter"}

// container returns the app container (c == 0) or a sidecar, which is
// lighter: no probes, ports or environment.
func container(c int) corev1.Container {
	name := containerNames[c%len(containerNames)]
	root, escalate := true, false
	if c > 0 {
		return corev1.Container{
			Name:                     name,
			Image:                    "registry.example.com/platform/" + name + ":2.0.1",
			VolumeMounts:             []corev1.VolumeMount{{Name: "kube-api-access-7xk2p", MountPath: "/var/run/secrets/kubernetes.io/serviceaccount", ReadOnly: true}},
			TerminationMessagePath:   "/dev/termination-log",
			TerminationMessagePolicy: corev1.TerminationMessageReadFile,
			ImagePullPolicy:          corev1.PullIfNotPresent,
		}
	}
	return corev1.Container{
		Name:  name,
		Image: "registry.example.com/storefront/" + name + ":1.4.2",
		Ports: []corev1.ContainerPort{
			{Name: "http", ContainerPort: int32(8080 + c), Protocol: corev1.ProtocolTCP},
			{Name: "metrics", ContainerPort: int32(9090 + c), Protocol: corev1.ProtocolTCP},
		},
		Env: []corev1.EnvVar{
			{Name: "LOG_LEVEL", Value: "info"},
			{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.name"}}},
			{Name: "POD_NAMESPACE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"}}},
		},
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("256Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("512Mi")},
		},
		VolumeMounts: []corev1.VolumeMount{
			{Name: "config", MountPath: "/etc/" + name, ReadOnly: true},
			{Name: "kube-api-access-7xk2p", MountPath: "/var/run/secrets/kubernetes.io/serviceaccount", ReadOnly: true},
		},
		LivenessProbe:            probe("/healthz", 8080+c),
		ReadinessProbe:           probe("/readyz", 8080+c),
		TerminationMessagePath:   "/dev/termination-log",
		TerminationMessagePolicy: corev1.TerminationMessageReadFile,
		ImagePullPolicy:          corev1.PullIfNotPresent,
		SecurityContext: &corev1.SecurityContext{
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			RunAsNonRoot:             &root,
			AllowPrivilegeEscalation: &escalate,
		},
	}
}

func probe(path string, port int) *corev1.Probe {
	return &corev1.Probe{
		ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intOrString(port), Scheme: corev1.URISchemeHTTP}},
		PeriodSeconds:    10,
		TimeoutSeconds:   1,
		SuccessThreshold: 1,
		FailureThreshold: 3,
	}
}

func serviceAccountVolume() corev1.Volume {
	expiry := int64(3607)
	mode := int32(420)
	return corev1.Volume{Name: "kube-api-access-7xk2p", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		DefaultMode: &mode,
		Sources: []corev1.VolumeProjection{
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{ExpirationSeconds: &expiry, Path: "token"}},
			{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"},
				Items: []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}},
			{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{Path: "namespace",
				FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"}}}}},
		},
	}}}
}

// Review wraps pod in the AdmissionReview kube-apiserver sends for a pod
// CREATE by the ReplicaSet controller.
func Review(pod *corev1.Pod, uid string) []byte {
	raw, err := json.Marshal(pod)
	if err != nil {
		panic(err) // a Pod always marshals
	}
	dryRun := false
	gvk := metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}
	gvr := metav1.GroupVersionResource{Version: "v1", Resource: "pods"}
	r := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID: types.UID(uid), Kind: gvk, Resource: gvr, RequestKind: &gvk, RequestResource: &gvr,
			Namespace: pod.Namespace, Operation: admissionv1.Create,
			UserInfo: authenticationv1.UserInfo{
				Username: "system:serviceaccount:kube-system:replicaset-controller",
				UID:      "2b7c8f4e-3a1d-4c6b-9e5f-0d8a7b6c5e4f",
				Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"},
			},
			Object:  runtime.RawExtension{Raw: raw},
			DryRun:  &dryRun,
			Options: runtime.RawExtension{Raw: []byte(`{"kind":"CreateOptions","apiVersion":"meta.k8s.io/v1"}`)},
		},
	}
	body, err := json.Marshal(r)
	if err != nil {
		panic(err)
	}
	return body
}

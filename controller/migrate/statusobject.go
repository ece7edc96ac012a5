package migrate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/canary-router/canary-router/controller"
)

// errNotRead is a Save before any Load: there is no version to write on.
var errNotRead = errors.New("status object written before it was read")

// FencedStatus reads and writes the status object for one controller of
// a leadership term (the migration's and the rollout's each own one).
// Load checks the term token the object records (controller.Term.Fence);
// Save writes only on the version Load read (a resourceVersion
// precondition: 409 Conflict if anything wrote since, the operator's
// commands included, and the pass is retried on a fresh read) and
// records this term's token. So a leader that froze and woke after
// another one acted cannot land a write it planned on what it read
// before. With no Term (the CLI) it reads and merges unconditionally.
type FencedStatus struct {
	Client kubernetes.Interface
	// Namespace holds the status object.
	Namespace string
	Term      *controller.Term

	mu sync.Mutex
	// version is the resourceVersion Load read, "" when the object was
	// absent; read says Load succeeded since the last failed Save.
	version string
	read    bool
}

// Load reads the status object's data (empty when absent).
func (s *FencedStatus) Load(ctx context.Context) (map[string]string, error) {
	cm, err := s.Client.CoreV1().ConfigMaps(s.Namespace).Get(ctx, StatusConfigMap, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		s.remember("")
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, err
	}
	if s.Term != nil {
		if err := s.Term.Fence(cm.Data[controller.TermKey]); err != nil {
			return nil, err
		}
	}
	s.remember(cm.ResourceVersion)
	if cm.Data == nil {
		return map[string]string{}, nil
	}
	return cm.Data, nil
}

// Save merges data into the status object: conditional and stamped with
// the term's token when fenced.
func (s *FencedStatus) Save(ctx context.Context, data map[string]string) error {
	if s.Term == nil {
		return SaveStatusData(ctx, s.Client, s.Namespace, data)
	}
	if err := s.Term.Check(); err != nil {
		return err
	}
	s.mu.Lock()
	version, read := s.version, s.read
	s.mu.Unlock()
	if !read {
		return errNotRead
	}
	data = maps.Clone(data)
	data[controller.TermKey] = s.Term.Token.Encode()
	cms := s.Client.CoreV1().ConfigMaps(s.Namespace)
	var cm *corev1.ConfigMap
	var err error
	if version == "" {
		// Absent when read: only a create is on that version. Another
		// writer's create in between is a conflict like any other.
		cm, err = cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: StatusConfigMap, Namespace: s.Namespace,
			Labels: map[string]string{"app.kubernetes.io/name": "canary-router"}}, Data: data}, metav1.CreateOptions{FieldManager: fieldManager})
	} else {
		cm, err = cms.Patch(ctx, StatusConfigMap, types.MergePatchType, conditionalPatch(version, data), metav1.PatchOptions{FieldManager: fieldManager})
	}
	if err != nil {
		s.mu.Lock()
		s.read = false
		s.mu.Unlock()
		if apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) || apierrors.IsNotFound(err) {
			return fmt.Errorf("status object changed since it was read; reading it again: %w", err)
		}
		return err
	}
	s.remember(cm.ResourceVersion)
	return nil
}

// Found says whether the last Load found the object.
func (s *FencedStatus) Found() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.version != ""
}

func (s *FencedStatus) remember(version string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.version, s.read = version, true
}

// conditionalPatch is a merge patch of data that the API server applies
// only to the object at version.
func conditionalPatch(version string, data map[string]string) []byte {
	b, _ := json.Marshal(map[string]any{"metadata": map[string]any{"resourceVersion": version}, "data": data})
	return b
}

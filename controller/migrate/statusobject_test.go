package migrate

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/canary-router/canary-router/controller"
)

// preconditionClient is a fake clientset whose ConfigMap patches honour
// metadata.resourceVersion as the API server does (409 on a mismatch) and
// bump it on every write; the plain fake ignores it.
func preconditionClient(t *testing.T, cm *corev1.ConfigMap) (*fake.Clientset, *int) {
	t.Helper()
	c := fake.NewClientset(cm)
	writes := 0
	c.PrependReactor("patch", "configmaps", func(a k8stesting.Action) (bool, runtime.Object, error) {
		p := a.(k8stesting.PatchAction)
		var body struct {
			Metadata struct {
				ResourceVersion string `json:"resourceVersion"`
			} `json:"metadata"`
			Data map[string]string `json:"data"`
		}
		if err := json.Unmarshal(p.GetPatch(), &body); err != nil {
			return true, nil, err
		}
		obj, err := c.Tracker().Get(schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}, p.GetNamespace(), p.GetName())
		if err != nil {
			return true, nil, err
		}
		cur := obj.(*corev1.ConfigMap).DeepCopy()
		if v := body.Metadata.ResourceVersion; v != "" && v != cur.ResourceVersion {
			return true, nil, apierrors.NewConflict(schema.GroupResource{Resource: "configmaps"}, p.GetName(), errors.New("the object has been modified"))
		}
		if cur.Data == nil {
			cur.Data = map[string]string{}
		}
		for k, v := range body.Data {
			cur.Data[k] = v
		}
		n, _ := strconv.Atoi(cur.ResourceVersion)
		cur.ResourceVersion = strconv.Itoa(n + 1)
		writes++
		return true, cur, c.Tracker().Update(schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}, cur, p.GetNamespace())
	})
	return c, &writes
}

type lease bool

func (l lease) Fresh(time.Duration) bool { return bool(l) }

func statusCM(rv string, data map[string]string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: StatusConfigMap, Namespace: "canary-router-system", ResourceVersion: rv}, Data: data}
}

func TestFencedStatus(t *testing.T) {
	own := controller.Token{Transitions: 3, Holder: "router-a_x"}
	later := controller.Token{Transitions: 4, Holder: "router-b_y"}
	for _, tc := range []struct {
		name string
		// recorded is the token in the object when this term reads it.
		recorded controller.Token
		// between is what another writer (the next leader) does after the
		// read and before the write; nil: nothing.
		between map[string]string
		fresh   bool
		wantErr error // nil: the write lands
		deposed bool
	}{
		{name: "nothing in between: the write lands", recorded: own, fresh: true},
		{name: "an earlier term's object: the write lands", recorded: controller.Token{Transitions: 2, Holder: "router-b_y"}, fresh: true},
		{name: "written since the read: stale resourceVersion, conflict, no write", recorded: own, fresh: true,
			between: map[string]string{StatusKey: `{"phase":"Paused"}`, controller.TermKey: later.Encode()}},
		{name: "a later term wrote it: stop before planning", recorded: later, fresh: true, wantErr: controller.ErrDeposed, deposed: true},
		{name: "Lease not renewed within the deadline: no write", recorded: own, fresh: false, wantErr: controller.ErrNotLeading},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, writes := preconditionClient(t, statusCM("10", map[string]string{StatusKey: `{"phase":"Running"}`, controller.TermKey: tc.recorded.Encode()}))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			s := &FencedStatus{Client: client, Namespace: "canary-router-system", Term: controller.NewTerm(ctx, cancel, own, lease(tc.fresh))}
			_, err := s.Load(ctx)
			if err == nil {
				if tc.between != nil {
					if err := SaveStatusData(ctx, client, "canary-router-system", tc.between); err != nil {
						t.Fatal(err)
					}
				}
				err = s.Save(ctx, map[string]string{StatusKey: `{"phase":"Running","batches":5}`})
			}
			got, gerr := client.CoreV1().ConfigMaps("canary-router-system").Get(context.Background(), StatusConfigMap, metav1.GetOptions{})
			if gerr != nil {
				t.Fatal(gerr)
			}
			landed := got.Data[StatusKey] == `{"phase":"Running","batches":5}`
			switch {
			case tc.wantErr != nil:
				if !errors.Is(err, tc.wantErr) || landed {
					t.Errorf("err %v, write landed %v; want %v and no write", err, landed, tc.wantErr)
				}
			case tc.between != nil:
				if !apierrors.IsConflict(errors.Unwrap(err)) || landed || got.Data[StatusKey] != tc.between[StatusKey] {
					t.Errorf("err %v, object %v; want a conflict and the other writer's data", err, got.Data)
				}
			default:
				if err != nil || !landed || got.Data[controller.TermKey] != own.Encode() {
					t.Errorf("err %v, object %v; want the write with this term's token", err, got.Data)
				}
			}
			if tc.deposed != (ctx.Err() != nil) {
				t.Errorf("term cancelled %v, want %v", ctx.Err() != nil, tc.deposed)
			}
			if tc.wantErr != nil && *writes != 0 {
				t.Errorf("%d writes reached the API server", *writes)
			}
		})
	}
}

// A conflict forgets the version read, so no write goes out until the
// pass has read the object again.
func TestFencedStatusNeedsAFreshRead(t *testing.T) {
	client, _ := preconditionClient(t, statusCM("10", map[string]string{}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := &FencedStatus{Client: client, Namespace: "canary-router-system",
		Term: controller.NewTerm(ctx, cancel, controller.Token{Transitions: 1, Holder: "a"}, lease(true))}
	if err := s.Save(ctx, map[string]string{StatusKey: "x"}); !errors.Is(err, errNotRead) {
		t.Fatalf("save before any read: %v", err)
	}
	if _, err := s.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if err := SaveStatusData(ctx, client, "canary-router-system", map[string]string{PausedKey: "true"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Save(ctx, map[string]string{StatusKey: "x"}); err == nil {
		t.Fatal("a write on a stale version landed")
	}
	if err := s.Save(ctx, map[string]string{StatusKey: "x"}); !errors.Is(err, errNotRead) {
		t.Fatalf("second save without a read: %v", err)
	}
	if _, err := s.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Save(ctx, map[string]string{StatusKey: "x"}); err != nil {
		t.Fatalf("after a fresh read: %v", err)
	}
}

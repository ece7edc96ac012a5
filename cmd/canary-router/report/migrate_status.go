package report

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/canary-router/canary-router/controller/migrate"
)

// WriteMigrationSection prints the migration from the status object for
// `canary-router status`: state, N of M workloads, pending moves per
// target, the batch in flight and failures with their reasons. A status
// object the caller may not read is said, not fatal.
func WriteMigrationSection(ctx context.Context, client kubernetes.Interface, namespace string, w io.Writer) {
	fmt.Fprintln(w)
	cm, err := client.CoreV1().ConfigMaps(namespace).Get(ctx, migrate.StatusConfigMap, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		fmt.Fprintln(w, "Migration: none recorded (see what would restart with canary-router migrate)")
		return
	case err != nil:
		fmt.Fprintln(w, ReadProblem("read the migration status (ConfigMap "+namespace+"/"+migrate.StatusConfigMap+")", err))
		return
	}
	st, ctl := migrate.DecodeStatus(cm.Data)
	WriteMigrationStatus(w, st, ctl)
	if len(st.PendingByTarget) > 0 {
		keys := make([]string, 0, len(st.PendingByTarget))
		for k := range st.PendingByTarget {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, 0, len(keys))
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%d to %s", st.PendingByTarget[k], k))
		}
		fmt.Fprintf(w, "  pending moves: %s\n", strings.Join(parts, ", "))
	}
	if len(st.SkippedByReason) > 0 {
		parts := make([]string, 0, len(st.SkippedByReason))
		for r, n := range st.SkippedByReason {
			parts = append(parts, fmt.Sprintf("%d %s", n, r))
		}
		sort.Strings(parts)
		fmt.Fprintf(w, "  skipped: %s\n", strings.Join(parts, ", "))
	}
}

// Package dashboard serves canary-router's rollout dashboard: one page,
// embedded in the binary (clusters are often air-gapped: no CDN, no
// build step), that polls a JSON document of the rollout and posts the
// operator's commands. What the document holds and how a command acts
// belong to the Backend, so the page and the CLI share one code path.
package dashboard

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

//go:embed assets
var assets embed.FS

// Backend is what the page shows and does.
type Backend interface {
	// State is the document GET /api/state returns as JSON.
	State(ctx context.Context) (any, error)
	// Act performs an operator command; reason is the operator's note
	// (pause uses it).
	Act(ctx context.Context, action, reason string) error
}

// ServerOptions configures the Handler.
type ServerOptions struct {
	Backend Backend
	// Actions are the commands POST /api/actions/{action} accepts.
	Actions []string
	// Hosts are the Host headers accepted; empty accepts any. A server on
	// loopback lists its own names, so a page on another site cannot
	// reach it through DNS rebinding with the user's credentials.
	Hosts []string
	// Timeout bounds one request's calls to the Backend.
	Timeout time.Duration
}

// RequestHeader must be on every POST, with the value "1". A cross-site
// page cannot set a custom header without a CORS preflight, which this
// server never grants, so it cannot press a button on the user's behalf.
const RequestHeader = "X-Canary-Router-Dashboard"

// maxBody bounds a command's body: a reason, not a document.
const maxBody = 4 << 10

type server struct{ o ServerOptions }

// Handler serves the page at /, the document at GET /api/state and the
// commands at POST /api/actions/{action}.
func Handler(o ServerOptions) http.Handler {
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	s := &server{o: o}
	static, _ := fs.Sub(assets, "assets") // a literal path of the embed: cannot fail
	mux := http.NewServeMux()
	mux.Handle("GET /", http.FileServerFS(static))
	mux.HandleFunc("GET /api/state", s.state)
	mux.HandleFunc("POST /api/actions/{action}", s.act)
	return s.guard(mux)
}

// guard refuses foreign Host headers and sets the headers every answer
// carries: the page loads nothing from elsewhere (CSP), and no answer is
// cached (the state is live).
func (s *server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(s.o.Hosts) > 0 && !slices.Contains(s.o.Hosts, r.Host) {
			writeError(w, http.StatusMisdirectedRequest, "host "+r.Host+" is not this dashboard's")
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'")
		h.Set("X-Content-Type-ServerOptions", "nosniff")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

func (s *server) state(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), s.o.Timeout)
	defer cancel()
	doc, err := s.o.Backend.State(ctx)
	if err != nil {
		writeError(w, statusOf(err), err.Error())
		return
	}
	writeJSON(w, http.StatusOK, doc)
}

// actRequest is a command's optional body.
type actRequest struct {
	Reason string `json:"reason"`
}

func (s *server) act(w http.ResponseWriter, r *http.Request) {
	action := r.PathValue("action")
	if !slices.Contains(s.o.Actions, action) {
		writeError(w, http.StatusNotFound, "no action "+action)
		return
	}
	if r.Header.Get(RequestHeader) != "1" {
		writeError(w, http.StatusForbidden, "missing header "+RequestHeader+": commands come from the dashboard's own page")
		return
	}
	if o := r.Header.Get("Origin"); o != "" && o != "http://"+r.Host {
		writeError(w, http.StatusForbidden, "origin "+o+" may not send commands")
		return
	}
	var req actRequest
	if r.ContentLength != 0 {
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody)).Decode(&req); err != nil {
			writeError(w, http.StatusBadRequest, "reading the command: "+err.Error())
			return
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.o.Timeout)
	defer cancel()
	if err := s.o.Backend.Act(ctx, action, req.Reason); err != nil {
		writeError(w, statusOf(err), err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"action": action, "message": action + " requested; the leader acts on it within seconds"})
}

// statusOf passes the API server's refusal on (403 for RBAC, 404 for no
// status object), so the page can say which it was; anything else is a
// bad gateway: this server is a client of the cluster.
func statusOf(err error) int {
	var st apierrors.APIStatus
	if errors.As(err, &st) && st.Status().Code >= 400 {
		return int(st.Status().Code)
	}
	return http.StatusBadGateway
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v) // the client may be gone: nothing to do
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

package broker

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// AdminAccess says who may use one admin listener. The broker's Unix
// socket relies on its file permissions and takes the zero value but for
// Hosts; a TCP listener, which any local user reaches, sets Token.
type AdminAccess struct {
	// Token, when set, must come with every request as "Authorization:
	// Bearer TOKEN" (compared in constant time), or the request gets 401.
	Token string
	// OpenMetrics lets GET /metrics and GET /healthz through without the
	// token, for a scraper that cannot send one.
	OpenMetrics bool
	// Hosts are the "host:port" names the listener may be addressed by.
	// A request whose Host header names another, or that carries an
	// Origin header naming another, gets 403 (DNS rebinding, cross-site
	// requests from a browser). Nil accepts any Host and refuses every
	// Origin: no browser page has business on the admin socket.
	Hosts []string
}

// AdminHandler serves GET /status (JSON), GET /metrics (Prometheus),
// POST /drain/{server} and POST /undrain/{server}, GET /healthz and
// GET /readyz (Ready), GET
// /recording/{id} and GET /watch/{id} (streams, see record.go), and the
// control endpoints of control.go, to requests a allows. State changes
// are by POST only; drains and the control endpoints are audited with
// the caller's identity.
func (b *Broker) AdminHandler(a AdminAccess) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", b.metricsHandler())
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		st := b.Status()
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		ha := b.HAStatus(ctx)
		st.HA = &ha
		enc.Encode(st)
	})
	drain := func(on bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			err := b.DrainBy(r.Context(), r.PathValue("server"), on, a.caller(r))
			b.auditAdmin(r, a, map[bool]string{true: "drain", false: "undrain"}[on], "", "", "server", r.PathValue("server"), "outcome", errText(err))
			if err != nil {
				code := http.StatusServiceUnavailable
				switch {
				case errors.Is(err, ErrUnknownServer):
					code = http.StatusNotFound
				case errors.Is(err, ErrDrainedInConfig):
					code = http.StatusConflict
				}
				http.Error(w, err.Error(), code)
				return
			}
			io.WriteString(w, "ok\n")
		}
	}
	mux.HandleFunc("POST /drain/{server}", drain(true))
	mux.HandleFunc("POST /undrain/{server}", drain(false))
	b.controlRoutes(mux, a)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		what, err := b.Ready()
		if err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok: "+what+"\n")
	})
	b.recordRoutes(mux, a) // GET /recording/{id}, GET /watch/{id} (record.go)
	return a.guard(mux)
}

// callerKey is the context key of the admin caller's name.
type callerKey struct{}

// WithCaller returns ctx naming the admin API's caller, as the listener
// knows it: on the Unix socket, the peer's user. The server's ConnContext
// sets it.
func WithCaller(ctx context.Context, who string) context.Context {
	return context.WithValue(ctx, callerKey{}, who)
}

// caller names who made r, for a drain: the name WithCaller gave, else
// "token" on a listener that requires one, else "unknown".
func (a AdminAccess) caller(r *http.Request) string {
	if who, _ := r.Context().Value(callerKey{}).(string); who != "" {
		return who
	}
	if a.Token != "" {
		return "token"
	}
	return "unknown"
}

// Guard refuses what a does not allow before next sees it: a Host or
// Origin not in Hosts (403), a request without the Token (401).
func (a AdminAccess) Guard(next http.Handler) http.Handler { return a.guard(next) }

// guard refuses what a does not allow before next sees it.
func (a AdminAccess) guard(next http.Handler) http.Handler {
	var want [sha256.Size]byte
	if a.Token != "" {
		want = sha256.Sum256([]byte("Bearer " + a.Token))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.sameOrigin(r) {
			http.Error(w, "cross-origin request refused", http.StatusForbidden)
			return
		}
		open := a.OpenMetrics && r.Method == http.MethodGet && (r.URL.Path == "/metrics" || r.URL.Path == "/healthz" || r.URL.Path == "/readyz")
		if a.Token != "" && !open {
			// Hashing both sides makes the comparison constant-time
			// over the length too.
			got := sha256.Sum256([]byte(r.Header.Get("Authorization")))
			if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="switchyard-admin"`)
				http.Error(w, "admin token required", http.StatusUnauthorized)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// sameOrigin reports whether r's Host is one of a.Hosts (any, when nil)
// and r carries no Origin header but one naming such a host.
func (a AdminAccess) sameOrigin(r *http.Request) bool {
	if a.Hosts != nil && !slices.Contains(a.Hosts, withPort(r.Host, "80")) {
		return false
	}
	origin := r.Header.Values("Origin")
	if len(origin) == 0 {
		return true
	}
	if a.Hosts == nil || len(origin) > 1 {
		return false
	}
	u, err := url.Parse(origin[0])
	if err != nil || u.Host == "" || u.User != nil || u.Path != "" && u.Path != "/" {
		return false
	}
	port := map[string]string{"http": "80", "https": "443"}[u.Scheme]
	return port != "" && slices.Contains(a.Hosts, withPort(strings.ToLower(u.Host), port))
}

// withPort returns hostport with port added when it has none, and the
// host in lower case.
func withPort(hostport, port string) string {
	hostport = strings.ToLower(hostport)
	if _, _, err := net.SplitHostPort(hostport); err == nil {
		return hostport
	}
	return net.JoinHostPort(strings.Trim(hostport, "[]"), port)
}

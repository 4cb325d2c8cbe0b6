// Package dashboard serves a migration's Prometheus metrics and a live web
// dashboard on one listener: /metrics, / (a small hand-written page, no
// build step) and the JSON it polls, /api/status and /api/accounts.
//
// It is fed either by a runner's events (Live) or by a state store alone
// (StoreView). It is read-only: it answers GET and HEAD, and offers nothing
// that changes a run. It shows counts, names and reasons, never a secret and
// never an item's content. It binds to loopback by default; any other
// address needs a bearer token, and with a token every request without it
// gets 401.
package dashboard

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// TokenEnv is the environment variable holding the bearer token.
const TokenEnv = "MIGRATE_DASHBOARD_TOKEN"

// Source answers the dashboard's API.
type Source interface {
	// Status returns everything but the accounts table.
	Status(ctx context.Context) (*Status, error)
	// Accounts returns the accounts table, without rows when version is
	// the current one (the page polls with the version it has).
	Accounts(ctx context.Context, version int64) (*Accounts, error)
}

//go:embed web
var webFS embed.FS

// Handler returns the dashboard's routes: the page, its API and, when m is
// not nil, /metrics. It does no authentication; Serve wraps it.
func Handler(src Source, m *Metrics) http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(webFS, "web")
	mux.Handle("GET /", http.FileServerFS(static))
	mux.HandleFunc("GET /api/status", func(w http.ResponseWriter, r *http.Request) {
		st, err := src.Status(r.Context())
		if err != nil {
			http.Error(w, "state not readable: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		writeJSON(w, st)
	})
	mux.HandleFunc("GET /api/accounts", func(w http.ResponseWriter, r *http.Request) {
		v, _ := strconv.ParseInt(r.URL.Query().Get("v"), 10, 64)
		a, err := src.Accounts(r.Context(), v)
		if err != nil {
			http.Error(w, "state not readable: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		writeJSON(w, a)
	})
	if m != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	}
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// Options configure the listener.
type Options struct {
	// Addr is host:port; "" means 127.0.0.1:0. A host that is not loopback
	// needs Token.
	Addr string
	// Token, when set, is required as "Authorization: Bearer TOKEN" (or
	// as the password of HTTP basic authentication, for browsers) on every
	// request.
	Token string
	// TLSCert and TLSKey, when set, are PEM files: the listener serves
	// HTTPS.
	TLSCert, TLSKey string
}

// ErrTokenRequired is returned by Listen for an address that is not
// loopback without a token.
var ErrTokenRequired = errors.New("dashboard: a listen address that is not loopback needs a token (" + TokenEnv + " or a token file)")

// LoadToken returns the token from file when given, else from the
// environment ("" when neither is set). A token file must not be readable by
// others.
func LoadToken(file string) (string, error) {
	if file == "" {
		return strings.TrimSpace(os.Getenv(TokenEnv)), nil
	}
	fi, err := os.Stat(file)
	if err != nil {
		return "", fmt.Errorf("dashboard: token file: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("dashboard: token file %s is readable by others (mode %o); chmod 600 it", file, fi.Mode().Perm())
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("dashboard: token file: %w", err)
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "", fmt.Errorf("dashboard: token file %s is empty", file)
	}
	return t, nil
}

// Server is a running dashboard listener.
type Server struct {
	srv *http.Server
	ln  net.Listener
	url string
	err chan error
}

// Listen binds o.Addr and serves h behind the listener's security: GET and
// HEAD only, the token when set, loopback-only Host names without one (a
// guard against DNS rebinding), and headers that keep the page from being
// framed or cached.
func Listen(o Options, h http.Handler) (*Server, error) {
	addr := o.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("dashboard: listen address %q: %w", addr, err)
	}
	if host == "" {
		return nil, fmt.Errorf("dashboard: listen address %q: give a host, e.g. 127.0.0.1:8080 (0.0.0.0 with a token for every interface)", addr)
	}
	loopback := isLoopback(host)
	if !loopback && o.Token == "" {
		return nil, ErrTokenRequired
	}
	var tlsCfg *tls.Config
	if o.TLSCert != "" || o.TLSKey != "" {
		if o.TLSCert == "" || o.TLSKey == "" {
			return nil, errors.New("dashboard: TLS needs both a certificate and a key")
		}
		cert, err := tls.LoadX509KeyPair(o.TLSCert, o.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("dashboard: TLS: %w", err)
		}
		tlsCfg = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dashboard: %w", err)
	}
	scheme := "http"
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
		scheme = "https"
	}
	s := &Server{ln: ln, err: make(chan error, 1)}
	s.srv = &http.Server{
		Handler:           guard(h, o.Token, o.Token == ""),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          log.New(io.Discard, "", 0), // not over the progress display
	}
	urlHost := ln.Addr().String()
	if a, ok := ln.Addr().(*net.TCPAddr); ok && a.IP.IsUnspecified() {
		urlHost = net.JoinHostPort("127.0.0.1", strconv.Itoa(a.Port))
	}
	s.url = scheme + "://" + urlHost + "/"
	go func() { s.err <- s.srv.Serve(ln) }()
	return s, nil
}

// URL is where the dashboard answers (loopback when bound to every
// interface).
func (s *Server) URL() string { return s.url }

// Addr is the bound address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Close stops the listener, letting requests in flight finish for up to
// two seconds.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = s.srv.Close()
	}
	return err
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// guard is the listener's security in front of every route.
func guard(h http.Handler, token string, loopbackOnly bool) http.Handler {
	want := sha256.Sum256([]byte(token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cache-Control", "no-store")
		hd.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'none'; base-uri 'none'")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			hd.Set("Allow", "GET, HEAD")
			http.Error(w, "read-only: GET and HEAD only", http.StatusMethodNotAllowed)
			return
		}
		if loopbackOnly {
			host := r.Host
			if hh, _, err := net.SplitHostPort(host); err == nil {
				host = hh
			}
			if !isLoopback(strings.Trim(host, "[]")) {
				http.Error(w, "this dashboard answers loopback host names only", http.StatusForbidden)
				return
			}
		} else if !authorized(r, want) {
			hd.Set("WWW-Authenticate", `Basic realm="zxmigrate dashboard", charset="UTF-8"`)
			http.Error(w, "a bearer token is required", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// authorized accepts "Bearer TOKEN", or basic authentication with TOKEN as
// the password (what a browser sends after its login prompt). The compare
// takes constant time.
func authorized(r *http.Request, want [32]byte) bool {
	var got string
	if a := r.Header.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		got = strings.TrimSpace(a[7:])
	} else if _, p, ok := r.BasicAuth(); ok {
		got = p
	} else {
		return false
	}
	g := sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(g[:], want[:]) == 1
}

// digest tells whether the accounts table changed between two reads.
type digest struct{ h hash.Hash }

func newDigest() *digest { return &digest{h: sha256.New()} }

func (d *digest) add(cells []any) { fmt.Fprintln(d.h, cells...) }

func (d *digest) sum() string { return string(d.h.Sum(nil)) }

// Package obs carries a run's observer of server operations to the code
// that talks to the servers: how long each APPEND, FETCH, PUT or REPORT
// took, which answers said "too busy", which operations were tried again,
// and how many connections are open to each server.
//
// The observer travels in the context, as net/http/httptrace's
// ClientTrace does (go.dev/src/net/http/httptrace/trace.go,
// WithClientTrace): the leaf packages report with one line where an
// operation happens, and no signature between the orchestrator and them
// changes. It carries hooks only, never configuration: a context without
// an observer gets one that does nothing.
//
// Servers are named by host:port, operations by a bounded set of verbs.
// An account address is never passed, so that metrics built on these
// reports keep a bounded number of series.
package obs

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
)

// Observer receives reports of server operations. Its methods may be
// called concurrently from many goroutines and must return quickly.
type Observer interface {
	// Op reports one operation (APPEND, FETCH, PUT, GET, REPORT...) to
	// server (host:port), how long it took and how it ended.
	Op(server, op string, d time.Duration, err error)
	// Retry reports that work on server is tried again, and why (a short
	// word: BYE, UNAVAILABLE, LIMIT, 429, 503, timeout, network...).
	Retry(server, reason string)
	// Throttle reports an answer of server saying it is over its limits:
	// BYE, UNAVAILABLE, LIMIT, INUSE (IMAP), 429 or 503 (HTTP).
	Throttle(server, answer string)
	// Conn reports connections to server opened (delta > 0) or closed
	// (delta < 0). side names whose server it is: "source",
	// "destination", or "http" when the caller does not know.
	Conn(server, side string, delta int)
	// Budget reports how many connections server may have at once (0:
	// no budget).
	Budget(server string, n int)
}

type ctxKey struct{}

// With returns a context carrying o; From on it and on its children
// returns o. A nil o returns ctx unchanged.
func With(ctx context.Context, o Observer) context.Context {
	if o == nil {
		return ctx
	}
	return context.WithValue(ctx, ctxKey{}, o)
}

// From returns the observer ctx carries, or one that does nothing.
func From(ctx context.Context) Observer {
	if ctx != nil {
		if o, ok := ctx.Value(ctxKey{}).(Observer); ok {
			return o
		}
	}
	return Nop{}
}

// Nop is an Observer that does nothing.
type Nop struct{}

// Op implements Observer.
func (Nop) Op(string, string, time.Duration, error) {}

// Retry implements Observer.
func (Nop) Retry(string, string) {}

// Throttle implements Observer.
func (Nop) Throttle(string, string) {}

// Conn implements Observer.
func (Nop) Conn(string, string, int) {}

// Budget implements Observer.
func (Nop) Budget(string, int) {}

// Sides of a connection.
const (
	SideSource      = "source"
	SideDestination = "destination"
	SideHTTP        = "http"
)

type sideKey struct{}

// WithSide returns a context saying that the connections dialed under it
// reach the given side ("source" or "destination").
func WithSide(ctx context.Context, side string) context.Context {
	return context.WithValue(ctx, sideKey{}, side)
}

// Side returns the side set by WithSide, or def.
func Side(ctx context.Context, def string) string {
	if s, ok := ctx.Value(sideKey{}).(string); ok && s != "" {
		return s
	}
	return def
}

// ServerError is an error that happened on one server. It wraps the error
// unchanged (errors.Is and errors.As see through it) and adds the server,
// so that a retry loop far from the connection can say which server it
// retries.
type ServerError struct {
	Server string
	Err    error
}

// Error returns the wrapped error's text.
func (e *ServerError) Error() string { return e.Err.Error() }

// Unwrap returns the wrapped error.
func (e *ServerError) Unwrap() error { return e.Err }

// Mark wraps a non-nil err with the server it happened on; nil stays nil,
// and an error already naming a server is returned as is.
func Mark(err error, server string) error {
	if err == nil || server == "" {
		return err
	}
	var se *ServerError
	if errors.As(err, &se) {
		return err
	}
	return &ServerError{Server: server, Err: err}
}

// ServerOf returns the server (host:port) err happened on: from a
// ServerError, an error with a Server() method, or a *url.Error (what
// net/http's client returns); "" when err does not say.
func ServerOf(err error) string {
	var se *ServerError
	if errors.As(err, &se) {
		return se.Server
	}
	var sv interface{ Server() string }
	if errors.As(err, &sv) {
		return sv.Server()
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil {
			return HostPort(u)
		}
	}
	return ""
}

// HostPort returns u's host:port in lower case, the port made explicit
// (80 for http, 443 for https). User information and path are dropped.
func HostPort(u *url.URL) string {
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if port == "" {
		switch strings.ToLower(u.Scheme) {
		case "http":
			port = "80"
		case "https":
			port = "443"
		}
	}
	if host == "" {
		return ""
	}
	return net.JoinHostPort(host, port)
}

// Answer returns the throttle answer err carries: BYE, UNAVAILABLE,
// LIMIT or INUSE for an IMAP answer, 429 or 503 for an HTTP status; ""
// when err is not a throttle answer.
func Answer(err error) string {
	if err == nil {
		return ""
	}
	var ie *imap.Error
	if errors.As(err, &ie) {
		switch ie.Code {
		case imap.ResponseCodeUnavailable, imap.ResponseCodeLimit, imap.ResponseCodeInUse:
			return string(ie.Code)
		}
		if ie.Type == imap.StatusResponseTypeBye {
			return "BYE"
		}
		return ""
	}
	var sc interface{ StatusCode() int }
	if errors.As(err, &sc) {
		return StatusAnswer(sc.StatusCode())
	}
	return ""
}

// StatusAnswer returns "429" or "503" for those HTTP statuses, else "".
func StatusAnswer(code int) string {
	if code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable {
		return strconv.Itoa(code)
	}
	return ""
}

// Reason names why err is retried, in a bounded set of words: a throttle
// answer (see Answer), "timeout", "network", an HTTP status class
// ("5xx"), an IMAP response code or type, or "other".
func Reason(err error) string {
	if a := Answer(err); a != "" {
		return a
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	var ie *imap.Error
	if errors.As(err, &ie) {
		switch {
		case ie.Code == imap.ResponseCodeServerBug:
			return "SERVERBUG"
		case ie.Type == imap.StatusResponseTypeNo:
			return "NO"
		}
		return "BAD"
	}
	var sc interface{ StatusCode() int }
	if errors.As(err, &sc) {
		return strconv.Itoa(sc.StatusCode()/100) + "xx"
	}
	var oe *net.OpError
	if errors.As(err, &oe) || errors.As(err, &ne) {
		return "network"
	}
	msg := err.Error()
	for _, s := range []string{"EOF", "connection reset", "broken pipe", "use of closed network connection", "connection refused"} {
		if strings.Contains(msg, s) {
			return "network"
		}
	}
	return "other"
}

// Time reports op on server to the observer of ctx, timed from start, and
// returns err marked with the server (see Mark). A throttle answer in err
// is reported too. Use it as
//
//	start := time.Now()
//	err := cmd.Wait()
//	err = obs.Time(ctx, server, "FETCH", start, err)
func Time(ctx context.Context, server, op string, start time.Time, err error) error {
	return TimeEach(ctx, server, op, 1, start, err)
}

// TimeEach is Time for n operations that one command carried and that
// ended together (the messages of a MULTIAPPEND): each is reported with
// an n-th of the time since start, so that the count is one per message
// and the sum the command's time. A throttle answer is reported once.
func TimeEach(ctx context.Context, server, op string, n int, start time.Time, err error) error {
	o := From(ctx)
	d := time.Since(start) / time.Duration(max(n, 1))
	for range max(n, 1) {
		o.Op(server, op, d, err)
	}
	if a := Answer(err); a != "" {
		o.Throttle(server, a)
	}
	return Mark(err, server)
}

package obs

import (
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Transport returns a RoundTripper that sends every request with base and
// reports it to the observer of the request's context: a connection in
// use from the request until its answer's body is read to the end or
// closed, the operation (the method) timed over the same span, and a 429
// or 503 answer as a throttle answer. side names the servers the client
// reaches ("source", "destination"; "" means "http"). Requests whose
// context carries no observer go straight to base.
//
// Installed under a pacer (internal/pace), it sees every attempt the pacer
// makes, each answer the server sent included.
func Transport(base http.RoundTripper, side string) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	if side == "" {
		side = SideHTTP
	}
	return &transport{base: base, side: side}
}

type transport struct {
	base http.RoundTripper
	side string
}

// RoundTrip implements http.RoundTripper.
func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	o := From(req.Context())
	if _, off := o.(Nop); off {
		return t.base.RoundTrip(req)
	}
	server, op := HostPort(req.URL), Method(req.Method)
	start := time.Now()
	o.Conn(server, t.side, 1)
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		o.Conn(server, t.side, -1)
		o.Op(server, op, time.Since(start), err)
		return resp, err
	}
	if a := StatusAnswer(resp.StatusCode); a != "" {
		o.Throttle(server, a)
	}
	var serr error
	if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
		serr = &StatusError{Code: resp.StatusCode}
	}
	done := func() {
		o.Conn(server, t.side, -1)
		o.Op(server, op, time.Since(start), serr)
	}
	if resp.Body == nil || resp.Body == http.NoBody {
		done()
		return resp, nil
	}
	resp.Body = &body{ReadCloser: resp.Body, done: done}
	return resp, nil
}

// body calls done once: at the end of the body, on a read error, or on
// Close.
type body struct {
	io.ReadCloser
	once sync.Once
	done func()
}

func (b *body) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.once.Do(b.done)
	}
	return n, err
}

func (b *body) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.done)
	return err
}

// StatusError is the outcome Transport reports for an answer 429 or 5xx.
type StatusError struct{ Code int }

// Error implements error.
func (e *StatusError) Error() string {
	return "obs: HTTP " + strconv.Itoa(e.Code) + " " + http.StatusText(e.Code)
}

// StatusCode returns the HTTP status.
func (e *StatusError) StatusCode() int { return e.Code }

// methods are the HTTP methods zxmigrate sends, the operation names
// Transport reports; any other method is reported as OTHER.
var methods = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodPut: true, http.MethodPost: true,
	http.MethodDelete: true, http.MethodOptions: true, "PROPFIND": true, "PROPPATCH": true,
	"REPORT": true, "MKCOL": true, "MKCALENDAR": true, "MOVE": true, "COPY": true,
}

// Method returns the operation name of an HTTP method: the method itself
// when it is a known one, else OTHER (a bounded set of label values).
func Method(m string) string {
	if m == "" {
		return http.MethodGet
	}
	if methods[m] {
		return m
	}
	return "OTHER"
}

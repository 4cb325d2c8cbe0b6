package obs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

// recorder is an Observer that keeps what it is told.
type recorder struct {
	mu        sync.Mutex
	ops       []string // server op ok|err
	retries   []string // server reason
	throttles []string // server answer
	conns     map[string]int
	peak      map[string]int
}

func newRecorder() *recorder { return &recorder{conns: map[string]int{}, peak: map[string]int{}} }

func (r *recorder) Op(server, op string, d time.Duration, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	outcome := "ok"
	if err != nil {
		outcome = "err"
	}
	r.ops = append(r.ops, server+" "+op+" "+outcome)
}

func (r *recorder) Retry(server, reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.retries = append(r.retries, server+" "+reason)
}

func (r *recorder) Throttle(server, answer string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.throttles = append(r.throttles, server+" "+answer)
}

func (r *recorder) Conn(server, side string, delta int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := server + " " + side
	r.conns[k] += delta
	r.peak[k] = max(r.peak[k], r.conns[k])
}

func (r *recorder) Budget(string, int) {}

func TestFromWithoutObserver(t *testing.T) {
	if _, ok := From(context.Background()).(Nop); !ok {
		t.Error("From without an observer is not Nop")
	}
	rec := newRecorder()
	ctx := With(context.Background(), rec)
	child, cancel := context.WithCancel(ctx)
	defer cancel()
	if From(child) != Observer(rec) {
		t.Error("a child context lost the observer")
	}
	if With(ctx, nil) != ctx {
		t.Error("With(nil) changed the context")
	}
	if got := Side(WithSide(ctx, SideSource), SideHTTP); got != SideSource {
		t.Errorf("Side = %q", got)
	}
	if got := Side(ctx, SideHTTP); got != SideHTTP {
		t.Errorf("Side default = %q", got)
	}
}

// TestTransport sends requests through the wrapper to a server that
// answers 200, 429 and 503, and checks every report: connections go back
// to 0 only once the answers are read, each answer is timed, and the
// throttle answers are counted per server.
func TestTransport(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/busy":
			w.WriteHeader(http.StatusTooManyRequests)
		case "/down":
			w.WriteHeader(http.StatusServiceUnavailable)
		case "/slow":
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			<-release
			fmt.Fprint(w, "body")
		default:
			fmt.Fprint(w, "ok")
		}
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	server := HostPort(u)
	rec := newRecorder()
	ctx := With(context.Background(), rec)
	hc := &http.Client{Transport: Transport(nil, SideDestination)}
	do := func(method, path string) *http.Response {
		req, _ := http.NewRequestWithContext(ctx, method, srv.URL+path, strings.NewReader("x"))
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	slow := do(http.MethodGet, "/slow")
	key := server + " " + SideDestination
	rec.mu.Lock()
	inUse := rec.conns[key]
	rec.mu.Unlock()
	if inUse != 1 {
		t.Errorf("connections while a body is unread = %d, want 1", inUse)
	}
	close(release)
	if b, _ := io.ReadAll(slow.Body); string(b) != "body" {
		t.Errorf("body %q", b)
	}
	slow.Body.Close()
	for _, r := range []struct{ method, path string }{{"PUT", "/"}, {"REPORT", "/busy"}, {"PUT", "/down"}, {"FROB", "/"}} {
		resp := do(r.method, r.path)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.conns[key] != 0 || rec.peak[key] != 1 {
		t.Errorf("connections at the end %d (peak %d), want 0 (peak 1)", rec.conns[key], rec.peak[key])
	}
	wantOps := []string{server + " GET ok", server + " PUT ok", server + " REPORT err", server + " PUT err", server + " OTHER ok"}
	if strings.Join(rec.ops, "|") != strings.Join(wantOps, "|") {
		t.Errorf("ops %q, want %q", rec.ops, wantOps)
	}
	if want := []string{server + " 429", server + " 503"}; strings.Join(rec.throttles, "|") != strings.Join(want, "|") {
		t.Errorf("throttles %q, want %q", rec.throttles, want)
	}
	if strings.Contains(server, "@") || !strings.HasPrefix(server, "127.0.0.1:") {
		t.Errorf("server %q", server)
	}
}

// TestTransportError reports a transport failure with the server named.
func TestTransportError(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.URL
	srv.Close() // nothing listens there now
	rec := newRecorder()
	req, _ := http.NewRequestWithContext(With(context.Background(), rec), http.MethodGet, addr+"/user@example.com/", nil)
	_, err := (&http.Client{Transport: Transport(nil, "")}).Do(req)
	if err == nil {
		t.Fatal("no error from a closed port")
	}
	u, _ := url.Parse(addr)
	if got := ServerOf(err); got != HostPort(u) {
		t.Errorf("ServerOf = %q, want %q", got, HostPort(u))
	}
	if Reason(err) != "network" {
		t.Errorf("Reason = %q", Reason(err))
	}
	if len(rec.ops) != 1 || !strings.HasSuffix(rec.ops[0], " GET err") || rec.conns[HostPort(u)+" http"] != 0 {
		t.Errorf("ops %q conns %v", rec.ops, rec.conns)
	}
}

func TestAnswerReasonMark(t *testing.T) {
	bye := &imap.Error{Type: imap.StatusResponseTypeBye, Text: "service busy"}
	unavail := &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnavailable}
	limit := &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeLimit}
	no := &imap.Error{Type: imap.StatusResponseTypeNo, Text: "mailbox full"}
	for _, c := range []struct {
		err            error
		answer, reason string
	}{
		{bye, "BYE", "BYE"},
		{fmt.Errorf("imapcopy: greeting: %w", bye), "BYE", "BYE"},
		{unavail, "UNAVAILABLE", "UNAVAILABLE"},
		{limit, "LIMIT", "LIMIT"},
		{no, "", "NO"},
		{&StatusError{Code: 429}, "429", "429"},
		{&StatusError{Code: 503}, "503", "503"},
		{&StatusError{Code: 502}, "", "5xx"},
		{context.DeadlineExceeded, "", "timeout"},
		{io.ErrUnexpectedEOF, "", "network"},
		{errors.New("something"), "", "other"},
	} {
		if got := Answer(c.err); got != c.answer {
			t.Errorf("Answer(%v) = %q, want %q", c.err, got, c.answer)
		}
		if got := Reason(c.err); got != c.reason {
			t.Errorf("Reason(%v) = %q, want %q", c.err, got, c.reason)
		}
	}
	m := Mark(bye, "imap.example.net:993")
	if ServerOf(m) != "imap.example.net:993" || m.Error() != bye.Error() {
		t.Errorf("Mark: %q %q", ServerOf(m), m.Error())
	}
	var ie *imap.Error
	if !errors.As(fmt.Errorf("pass: %w", m), &ie) || ie != bye {
		t.Error("a marked error hides its cause")
	}
	if Mark(m, "other:1") != m || Mark(nil, "x:1") != nil {
		t.Error("Mark re-marked or marked nil")
	}
	if ServerOf(errors.New("x")) != "" {
		t.Error("ServerOf of a plain error")
	}
}

func TestTime(t *testing.T) {
	rec := newRecorder()
	ctx := With(context.Background(), rec)
	bye := &imap.Error{Type: imap.StatusResponseTypeBye}
	err := Time(ctx, "h:143", "APPEND", time.Now(), bye)
	if ServerOf(err) != "h:143" || !errors.Is(err, bye) {
		t.Errorf("Time returned %v", err)
	}
	if Time(ctx, "h:143", "FETCH", time.Now(), nil) != nil {
		t.Error("Time(nil) not nil")
	}
	if strings.Join(rec.ops, "|") != "h:143 APPEND err|h:143 FETCH ok" || strings.Join(rec.throttles, "|") != "h:143 BYE" {
		t.Errorf("ops %q throttles %q", rec.ops, rec.throttles)
	}
}

// TestCountConn counts a TCP connection once, however often it is closed,
// and keeps the socket reachable for code that peeks at it.
func TestCountConn(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			defer c.Close()
			io.Copy(io.Discard, c)
		}
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if CountConn(context.Background(), raw, "x:1", SideIMAP) != raw {
		t.Error("without an observer the connection is wrapped")
	}
	rec := newRecorder()
	ctx := WithSide(With(context.Background(), rec), SideSource)
	c := CountConn(ctx, raw, "x:1", Side(ctx, SideIMAP))
	if _, ok := c.(syscall.Conn); !ok {
		t.Error("the counted connection lost syscall.Conn")
	}
	if rec.conns["x:1 source"] != 1 {
		t.Errorf("in use after dial: %v", rec.conns)
	}
	c.Close()
	c.Close()
	if rec.conns["x:1 source"] != 0 || rec.peak["x:1 source"] != 1 {
		t.Errorf("after two closes: %v (peak %v)", rec.conns, rec.peak)
	}
}

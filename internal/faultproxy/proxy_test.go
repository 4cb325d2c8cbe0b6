package faultproxy

import (
	"bytes"
	"errors"
	"io"
	"net"

	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// sinkServer records, per connection, every byte it receives until EOF or an
// error, after writing greeting. It answers nothing else.
type sinkServer struct {
	ln       net.Listener
	greeting []byte
	mu       sync.Mutex
	got      [][]byte
	wg       sync.WaitGroup
}

func startSink(t *testing.T, greeting []byte) *sinkServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &sinkServer{ln: ln, greeting: greeting}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				if len(s.greeting) > 0 {
					if _, err := c.Write(s.greeting); err != nil {
						return
					}
				}
				b, _ := io.ReadAll(c)
				s.mu.Lock()
				s.got = append(s.got, b)
				s.mu.Unlock()
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); s.wg.Wait() })
	return s
}

func (s *sinkServer) received() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.got...)
}

// waitReceived waits until the sink recorded n connections.
func (s *sinkServer) waitReceived(t *testing.T, n int) [][]byte {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if g := s.received(); len(g) >= n {
			return g
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("sink recorded %d connections, want %d", len(s.received()), n)
	return nil
}

// startEcho starts a server that echoes every byte back.
func startEcho(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().String()
}

func listen(t *testing.T, target string, opt Options) *Proxy {
	t.Helper()
	p, err := Listen(target, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readAll dials addr and reads until the end. A reset that beats connect
// counts as an empty read.
func readAll(t *testing.T, addr string) []byte {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if errors.Is(err, syscall.ECONNRESET) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got, _ := io.ReadAll(c)
	return got
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

func TestPassThroughEcho(t *testing.T) {
	p := listen(t, startEcho(t), Options{})
	c := dial(t, p.Addr())
	want := pattern(300_000)
	go func() { c.Write(want); c.(*net.TCPConn).CloseWrite() }()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("echo returned %d bytes, want %d identical bytes", len(got), len(want))
	}
	st := p.Stats()
	if st.Accepted != 1 || st.Faults() != 0 || st.BytesToServer != 300_000 || st.BytesToClient != 300_000 {
		t.Errorf("stats = %+v, want 1 accepted, 0 faults, 300000 bytes each way", st)
	}
}

func TestResetToServerAtOffset(t *testing.T) {
	for _, off := range []int64{0, 1, 4095, 65_536, 123_457} {
		sink := startSink(t, nil)
		p := listen(t, sink.ln.Addr().String(), Options{Schedule: Fixed{0: {{Kind: Reset, Dir: ToServer, Offset: off}}}})
		c := dial(t, p.Addr())
		data := pattern(200_000)
		_, werr := c.Write(data)
		_, rerr := io.ReadAll(c)
		got := sink.waitReceived(t, 1)[0]
		// A RST makes the receiver drop what it has not read yet, so the
		// server sees at most the first off bytes, never a byte beyond.
		if int64(len(got)) > off || !bytes.HasPrefix(data, got) {
			t.Errorf("offset %d: server got %d bytes (prefix %v), want at most the first %d",
				off, len(got), bytes.HasPrefix(data, got), off)
		}
		if werr == nil && rerr == nil {
			t.Errorf("offset %d: client saw neither a write nor a read error", off)
		}
		if st := p.Stats(); st.Resets != 1 {
			t.Errorf("offset %d: resets = %d, want 1", off, st.Resets)
		}
	}
}

func TestResetToClientAtOffset(t *testing.T) {
	data := pattern(500_000)
	for _, off := range []int64{0, 10, 32_768, 400_001} {
		sink := startSink(t, data)
		p := listen(t, sink.ln.Addr().String(), Options{Schedule: Fixed{0: {{Kind: Reset, Dir: ToClient, Offset: off}}}})
		got := readAll(t, p.Addr())
		if int64(len(got)) > off || !bytes.HasPrefix(data, got) {
			t.Errorf("offset %d: client got %d bytes, want at most the first %d", off, len(got), off)
		}
	}
}

// TestCloseToClientAtOffset uses a graceful close, which loses nothing in
// flight: the client must get exactly the bytes before the offset.
func TestCloseToClientAtOffset(t *testing.T) {
	data := pattern(500_000)
	for _, off := range []int64{0, 10, 32_768, 400_001} {
		sink := startSink(t, data)
		p := listen(t, sink.ln.Addr().String(), Options{Schedule: Fixed{0: {{Kind: Close, Dir: ToClient, Offset: off}}}})
		c := dial(t, p.Addr())
		got, _ := io.ReadAll(c)
		if int64(len(got)) != off || !bytes.Equal(got, data[:off]) {
			t.Errorf("offset %d: client got %d bytes, want exactly the first %d", off, len(got), off)
		}
	}
}

func TestOffsetNotReachedDoesNotFire(t *testing.T) {
	p := listen(t, startEcho(t), Options{Schedule: Fixed{0: {{Kind: Reset, Dir: ToServer, Offset: 1000}}}})
	c := dial(t, p.Addr())
	go func() { c.Write([]byte("short")); c.(*net.TCPConn).CloseWrite() }()
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "short" {
		t.Fatalf("got %q, %v; want \"short\", nil", got, err)
	}
	if st := p.Stats(); st.Resets != 0 {
		t.Errorf("resets = %d, want 0", st.Resets)
	}
}

func TestStallLongerThanClientTimeout(t *testing.T) {
	sink := startSink(t, []byte("0123456789abcdef"))
	p := listen(t, sink.ln.Addr().String(), Options{Schedule: Fixed{0: {{Kind: Stall, Dir: ToClient, Offset: 10}}}})
	c := dial(t, p.Addr())
	buf := make([]byte, 10)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "0123456789" {
		t.Fatalf("first bytes %q, %v", buf, err)
	}
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	_, err := c.Read(buf)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read after stall: %v, want a timeout", err)
	}
	if st := p.Stats(); st.Stalls != 1 {
		t.Errorf("stalls = %d, want 1", st.Stalls)
	}
}

func TestStallWithDurationResumes(t *testing.T) {
	sink := startSink(t, []byte("0123456789abcdef"))
	p := listen(t, sink.ln.Addr().String(), Options{Schedule: Fixed{0: {{Kind: Stall, Dir: ToClient, Offset: 4, Duration: 50 * time.Millisecond}}}})
	c := dial(t, p.Addr())
	buf := make([]byte, 16)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "0123456789abcdef" {
		t.Fatalf("got %q, %v; want all 16 bytes after the stall", buf, err)
	}
}

func TestInjectAndClose(t *testing.T) {
	sink := startSink(t, []byte("* OK ready\r\n"))
	bye := []byte("* BYE service busy\r\n")
	p := listen(t, sink.ln.Addr().String(), Options{Schedule: Fixed{0: {
		{Kind: Inject, Dir: ToClient, Offset: 12, Data: bye},
		{Kind: Close, Dir: ToClient, Offset: 12},
	}}})
	c := dial(t, p.Addr())
	got, _ := io.ReadAll(c)
	if diff := cmp.Diff(string(got), "* OK ready\r\n* BYE service busy\r\n"); diff != "" {
		t.Errorf("client read (-got +want):\n%s", diff)
	}
	if st := p.Stats(); st.Injects != 1 || st.Closes != 1 {
		t.Errorf("stats = %v, want 1 inject and 1 close", st)
	}
}

func TestRefuse(t *testing.T) {
	p := listen(t, startEcho(t), Options{})
	p.SetRefuse(true)
	// The reset can reach the client before connect returns (a dial
	// error) or after (EOF or reset on read): both are a refusal.
	if c, err := net.Dial("tcp", p.Addr()); err == nil {
		c.Write([]byte("x"))
		got, _ := io.ReadAll(c)
		c.Close()
		if len(got) != 0 {
			t.Errorf("refused connection returned %q", got)
		}
	}
	p.SetRefuse(false)
	c2 := dial(t, p.Addr())
	c2.Write([]byte("y"))
	b := make([]byte, 1)
	if _, err := io.ReadFull(c2, b); err != nil || b[0] != 'y' {
		t.Errorf("after SetRefuse(false): %q, %v", b, err)
	}
	if st := p.Stats(); st.Refused != 1 || st.Accepted != 1 {
		t.Errorf("stats = %v, want 1 refused, 1 accepted", st)
	}
}

func TestMaxConnsAnswersBusy(t *testing.T) {
	p := listen(t, startEcho(t), Options{MaxConns: 2})
	for range 2 {
		c := dial(t, p.Addr())
		c.Write([]byte("a"))
		io.ReadFull(c, make([]byte, 1)) // make sure it is forwarded
	}
	extra := dial(t, p.Addr())
	got, _ := io.ReadAll(extra)
	if string(got) != DefaultBusyLine {
		t.Errorf("third connection got %q, want %q", got, DefaultBusyLine)
	}
	if st := p.Stats(); st.Busy != 1 || st.Accepted != 2 {
		t.Errorf("stats = %v, want 2 accepted and 1 busy", st)
	}
	if n := p.DropAll(); n != 2 {
		t.Errorf("DropAll reset %d connections, want 2", n)
	}
}

func TestBandwidthKeepsBytes(t *testing.T) {
	p := listen(t, startEcho(t), Options{Bandwidth: 4 << 20})
	c := dial(t, p.Addr())
	want := pattern(100_000)
	go func() { c.Write(want); c.(*net.TCPConn).CloseWrite() }()
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("got %d bytes, %v; want %d identical", len(got), err, len(want))
	}
}

func TestRandomReproducible(t *testing.T) {
	r := Random{Seed: 42, Rate: 0.5, Kinds: []Kind{Reset, Stall, Inject}, MinOffset: 10, MaxOffset: 1000}
	var a, b []Fault
	n := 0
	for i := range 1000 {
		fa, fb := r.Faults(i), r.Faults(i)
		a, b = append(a, fa...), append(b, fb...)
		n += len(fa)
	}
	if diff := cmp.Diff(a, b); diff != "" {
		t.Fatalf("same seed, different faults:\n%s", diff)
	}
	if n < 400 || n > 600 {
		t.Errorf("rate 0.5 over 1000 connections gave %d faults", n)
	}
	other := Random{Seed: 43, Rate: 0.5, Kinds: r.Kinds, MinOffset: 10, MaxOffset: 1000}
	var c []Fault
	for i := range 1000 {
		c = append(c, other.Faults(i)...)
	}
	if cmp.Equal(a, c) {
		t.Errorf("seeds 42 and 43 gave the same faults")
	}
	for _, f := range a {
		if f.Offset < 10 || f.Offset >= 1000 {
			t.Errorf("fault %v outside [10,1000)", f)
		}
	}
}

// TestRandomRunReproduces runs the same seeded schedule twice over sequential
// connections and expects the server to receive the same byte counts.
func TestRandomRunReproduces(t *testing.T) {
	run := func() []int {
		sink := startSink(t, nil)
		p := listen(t, sink.ln.Addr().String(), Options{Schedule: Random{Seed: 7, Rate: 0.6, Dirs: []Direction{ToServer}, MaxOffset: 5000}})
		data := pattern(6000)
		for i := range 20 {
			c := dial(t, p.Addr())
			c.Write(data)
			c.(*net.TCPConn).CloseWrite()
			io.ReadAll(c)
			sink.waitReceived(t, i+1)
		}
		var sizes []int
		for _, g := range sink.received() {
			sizes = append(sizes, len(g))
		}
		return sizes
	}
	first, second := run(), run()
	if diff := cmp.Diff(first, second); diff != "" {
		t.Errorf("two runs with seed 7 differ (-first +second):\n%s", diff)
	}
	cut := 0
	for _, n := range first {
		if n < 6000 {
			cut++
		}
	}
	if cut == 0 || cut == len(first) {
		t.Errorf("sizes %v: want some connections cut and some whole", first)
	}
}

func TestCloseEndsStalledConnections(t *testing.T) {
	sink := startSink(t, []byte("hello"))
	p, err := Listen(sink.ln.Addr().String(), Options{Schedule: Fixed{0: {{Kind: Stall, Dir: ToClient, Offset: 0}}}})
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, p.Addr())
	for p.Active() == 0 {
		time.Sleep(time.Millisecond)
	}
	done := make(chan error, 1)
	go func() { done <- p.Close() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return with a stalled connection open")
	}
	if got, _ := io.ReadAll(c); len(got) != 0 {
		t.Errorf("client got %q through a stall at offset 0", got)
	}
}

func TestDialFailureResetsClient(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	p := listen(t, addr, Options{})
	got := readAll(t, p.Addr())
	if len(got) != 0 {
		t.Errorf("got %q from a dead target", got)
	}
}

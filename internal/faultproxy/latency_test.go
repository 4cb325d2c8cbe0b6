package faultproxy

import (
	"io"
	"net"
	"testing"
	"time"
)

// listenServer starts a loopback server running serve on each connection.
func listenServer(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				serve(c)
			}()
		}
	}()
	return ln.Addr().String()
}

func echo(c net.Conn) { _, _ = io.Copy(c, c) }

// sink reads everything, then answers one byte.
func sink(c net.Conn) {
	_, _ = io.Copy(io.Discard, c)
	_, _ = c.Write([]byte{1})
}

func delayLine(t *testing.T, target string, opt DelayOptions) *DelayLine {
	t.Helper()
	d, err := ListenDelay(target, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// roundTrip measures the best of a few one-byte echoes.
func roundTrip(t *testing.T, addr string) time.Duration {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	best := time.Hour
	b := []byte{0}
	for i := 0; i < 5; i++ {
		start := time.Now()
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, b); err != nil {
			t.Fatal(err)
		}
		best = min(best, time.Since(start))
	}
	return best
}

// bulk sends n bytes, half-closes and waits for the sink's answer.
func bulk(t *testing.T, addr string, n int) time.Duration {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 64<<10)
	start := time.Now()
	for sent := 0; sent < n; sent += len(buf) {
		if _, err := c.Write(buf); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, buf[:1]); err != nil {
		t.Fatal(err)
	}
	return time.Since(start)
}

func TestDelayLineRoundTrip(t *testing.T) {
	const delay = 20 * time.Millisecond
	d := delayLine(t, listenServer(t, echo), DelayOptions{Delay: delay, Jitter: 2 * time.Millisecond, Seed: 1})
	rtt := roundTrip(t, d.Addr())
	t.Logf("rtt through a %v delay line: %v", delay, rtt)
	if rtt < 2*delay || rtt > 2*delay+500*time.Millisecond {
		t.Fatalf("rtt %v, want about %v", rtt, 2*delay)
	}
	st := d.Stats()
	if st.BytesToServer != 5 || st.BytesToClient != 5 {
		t.Fatalf("stats %v, want 5 bytes each way", st)
	}
}

func TestDelayLineKeepsOrder(t *testing.T) {
	d := delayLine(t, listenServer(t, echo), DelayOptions{Delay: 2 * time.Millisecond, Jitter: 5 * time.Millisecond, Seed: 7})
	c, err := net.Dial("tcp", d.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const n = 1 << 20
	want := make([]byte, n)
	for i := range want {
		want[i] = byte(i * 7 / 13)
	}
	go func() {
		for off := 0; off < n; off += 1000 {
			if _, err := c.Write(want[off:min(off+1000, n)]); err != nil {
				return
			}
		}
	}()
	got := make([]byte, n)
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("byte %d: got %d, want %d", i, got[i], want[i])
		}
	}
}

// A bulk transfer through a 20 ms line takes about as long as through a
// line without delay: chunks are in flight together, so the delay is paid
// once, not once per chunk (a sleep per 32 KiB chunk would take over 10 s
// here).
func TestDelayLineKeepsThroughput(t *testing.T) {
	addr := listenServer(t, sink)
	const n = 16 << 20
	for _, bw := range []int64{0, 32 << 20} {
		flat := delayLine(t, addr, DelayOptions{Bandwidth: bw})
		slow := delayLine(t, addr, DelayOptions{Delay: 20 * time.Millisecond, Bandwidth: bw})
		base := bulk(t, flat.Addr(), n)
		got := bulk(t, slow.Addr(), n)
		t.Logf("bandwidth cap %d B/s: %d MiB in %v without delay, %v with 20 ms each way", bw, n>>20, base, got)
		if got > 3*base+2*time.Second {
			t.Fatalf("with delay %v, without %v: the line throttles", got, base)
		}
		if bw > 0 && base < time.Duration(n/bw)*time.Second*8/10 {
			t.Fatalf("capped at %d B/s, %d bytes took only %v", bw, n, base)
		}
		if st := slow.Stats(); st.BytesToServer != n || st.BytesToClient != 1 {
			t.Fatalf("stats %v", st)
		}
	}
}

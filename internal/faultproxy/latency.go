package faultproxy

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// DelayOptions configures a DelayLine. The zero value forwards without delay.
type DelayOptions struct {
	// Delay is the one-way delay added in each direction; the round trip
	// through the line grows by twice this.
	Delay time.Duration
	// Jitter adds a uniformly drawn extra delay in [0, Jitter) per chunk.
	// Order is kept: a chunk never leaves before the one read before it.
	Jitter time.Duration
	// Bandwidth caps each direction of each connection at this many bytes
	// per second; 0 means unlimited.
	Bandwidth int64
	// Seed seeds the jitter draws; the same seed draws the same jitters on
	// the same chunks.
	Seed uint64
	// QueueChunks bounds the chunks in flight per direction; 0 means 65536.
	// Each chunk is at most 32 KiB, so the default holds the
	// bandwidth-delay product of links far beyond loopback at WAN delays.
	QueueChunks int
}

// DelayStats counts the bytes a DelayLine carried.
type DelayStats struct {
	Accepted      int64 // connections accepted
	BytesToServer int64 // bytes written to the target
	BytesToClient int64 // bytes written back to clients
}

// String prints the counters on one line, for test logs.
func (s DelayStats) String() string {
	return fmt.Sprintf("accepted=%d to-server=%d to-client=%d", s.Accepted, s.BytesToServer, s.BytesToClient)
}

// DelayLine is a TCP forwarder on 127.0.0.1 that emulates a long link: every
// chunk read from one side is timestamped and written to the other side
// Delay (plus jitter) later. Each direction is a queue, not a sleep per
// chunk, so chunks stay in flight together: the line holds the
// bandwidth-delay product and adds latency without lowering throughput
// (up to Bandwidth, when set). Chain it in front of a Proxy to combine
// latency with faults. It is safe for concurrent use.
type DelayLine struct {
	target string
	ln     net.Listener
	opt    DelayOptions

	accepted, toServer, toClient atomic.Int64
	seq                          atomic.Uint64

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// ListenDelay starts a delay line on 127.0.0.1 (a free port) forwarding to
// target.
func ListenDelay(target string, opt DelayOptions) (*DelayLine, error) {
	if opt.Delay < 0 || opt.Jitter < 0 || opt.Bandwidth < 0 {
		return nil, errors.New("faultproxy: negative delay, jitter or bandwidth")
	}
	if opt.QueueChunks <= 0 {
		opt.QueueChunks = 1 << 16
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultproxy: listen: %w", err)
	}
	d := &DelayLine{target: target, ln: ln, opt: opt, conns: map[net.Conn]struct{}{}}
	d.wg.Add(1)
	go d.serve()
	return d, nil
}

// Addr is the line's "127.0.0.1:port".
func (d *DelayLine) Addr() string { return d.ln.Addr().String() }

// Stats returns the counters so far.
func (d *DelayLine) Stats() DelayStats {
	return DelayStats{Accepted: d.accepted.Load(), BytesToServer: d.toServer.Load(), BytesToClient: d.toClient.Load()}
}

// Close stops accepting, closes every open connection and waits for the
// forwarding goroutines to end.
func (d *DelayLine) Close() error {
	d.mu.Lock()
	d.closed = true
	for c := range d.conns {
		c.Close()
	}
	d.mu.Unlock()
	err := d.ln.Close()
	d.wg.Wait()
	return err
}

func (d *DelayLine) track(c net.Conn) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return false
	}
	d.conns[c] = struct{}{}
	return true
}

func (d *DelayLine) untrack(c net.Conn) {
	d.mu.Lock()
	delete(d.conns, c)
	d.mu.Unlock()
}

func (d *DelayLine) serve() {
	defer d.wg.Done()
	for {
		c, err := d.ln.Accept()
		if err != nil {
			return
		}
		d.accepted.Add(1)
		d.wg.Add(1)
		go d.handle(c)
	}
}

func (d *DelayLine) handle(client net.Conn) {
	defer d.wg.Done()
	if !d.track(client) {
		client.Close()
		return
	}
	defer d.untrack(client)
	defer client.Close()
	server, err := net.Dial("tcp", d.target)
	if err != nil {
		return
	}
	if !d.track(server) {
		server.Close()
		return
	}
	defer d.untrack(server)
	defer server.Close()
	n := d.seq.Add(1)
	var both sync.WaitGroup
	both.Add(2)
	go func() {
		defer both.Done()
		d.pipe(server, client, &d.toServer, rand.New(rand.NewPCG(d.opt.Seed, 2*n)))
	}()
	go func() {
		defer both.Done()
		d.pipe(client, server, &d.toClient, rand.New(rand.NewPCG(d.opt.Seed, 2*n+1)))
	}()
	both.Wait()
}

// chunk is bytes read at one instant, due on the other side at due; nil
// data marks the end of the stream.
type chunk struct {
	data []byte
	due  time.Time
}

// pipe carries one direction: a reader timestamps chunks into a queue, a
// writer releases each at its due time (and no faster than Bandwidth). When
// either side fails, both connections close so that the other direction
// ends too.
func (d *DelayLine) pipe(dst, src net.Conn, count *atomic.Int64, rng *rand.Rand) {
	q := make(chan chunk, d.opt.QueueChunks)
	done := make(chan struct{})
	go func() {
		defer close(done)
		var free time.Time // when the capped link is next idle
		for c := range q {
			if c.data == nil {
				time.Sleep(time.Until(c.due))
				if tc, ok := dst.(*net.TCPConn); ok {
					_ = tc.CloseWrite()
				}
				continue
			}
			at := c.due
			if bw := d.opt.Bandwidth; bw > 0 {
				if free.After(at) {
					at = free
				}
				free = at.Add(time.Duration(int64(len(c.data)) * int64(time.Second) / bw))
				at = free
			}
			if w := time.Until(at); w > 0 {
				time.Sleep(w)
			}
			count.Add(int64(len(c.data))) // counted when released, before the peer can see them
			if _, err := dst.Write(c.data); err != nil {
				dst.Close()
				src.Close()
				for range q { // let the reader finish
				}
				return
			}
		}
	}()
	buf := make([]byte, 32<<10)
	var last time.Time
	for {
		n, err := src.Read(buf)
		if n > 0 {
			due := time.Now().Add(d.opt.Delay)
			if d.opt.Jitter > 0 {
				due = due.Add(time.Duration(rng.Int64N(int64(d.opt.Jitter))))
			}
			if due.Before(last) {
				due = last
			}
			last = due
			q <- chunk{data: append([]byte(nil), buf[:n]...), due: due}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				q <- chunk{due: last}
			} else {
				dst.Close()
			}
			break
		}
	}
	close(q)
	<-done
}

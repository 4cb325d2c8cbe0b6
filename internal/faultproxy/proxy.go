package faultproxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultBusyLine is what a connection over Options.MaxConns receives before
// it is closed, in the words of Zimbra's zimbraImapMaxConnections limit.
const DefaultBusyLine = "* BYE Zimbra IMAP server closing connection; service busy\r\n"

// errFault ends a pump because a fault closed the connection.
var errFault = errors.New("faultproxy: connection closed by fault")

// Options configures a Proxy. The zero value forwards everything untouched.
type Options struct {
	// Schedule gives each new connection its faults; nil means none.
	Schedule Schedule
	// MaxConns caps concurrent connections; 0 means no cap. Extra
	// connections receive BusyLine and are closed.
	MaxConns int
	// BusyLine is sent to connections over MaxConns; "" means DefaultBusyLine.
	BusyLine string
	// Bandwidth limits each direction of each connection to this many bytes
	// per second; 0 means unlimited.
	Bandwidth int64
	// IMAP, when not nil, makes the proxy parse IMAP and apply Zimbra's
	// manners (see IMAPRules).
	IMAP *IMAPRules
}

// Stats counts what a Proxy did. Faults are counted when they fire.
type Stats struct {
	Accepted int64 // connections accepted and forwarded
	Refused  int64 // connections reset at accept because of SetRefuse
	Busy     int64 // connections answered with BusyLine because of MaxConns
	Resets   int64 // Reset faults fired, including DropAll
	Stalls   int64 // Stall faults fired
	Injects  int64 // Inject faults fired
	Closes   int64 // Close faults fired
	Rejected int64 // APPENDs answered NO by the IMAP rules
	Dropped  int64 // connections dropped by the IMAP throttle rule
	// ErrorDrops counts connections dropped by IMAPRules.MaxConsecutiveErrors.
	ErrorDrops int64
	// Cuts counts connections closed by IMAPRules.CutAnswer.
	Cuts int64
	// FetchWaits counts FETCH commands that IMAPRules.FetchPerAccount held
	// back while another FETCH of their account was under way.
	FetchWaits int64
	// FetchWaited is the time those FETCHes spent held back, summed.
	FetchWaited time.Duration
	// Appends counts APPEND commands seen with IMAP rules on, and
	// AppendedMessages the messages they carried (more than Appends when
	// clients use MULTIAPPEND), refused ones included.
	Appends, AppendedMessages int64

	BytesToServer int64
	BytesToClient int64
}

// Faults is the number of faults of every kind that reached a client.
func (s Stats) Faults() int64 {
	return s.Refused + s.Busy + s.Resets + s.Stalls + s.Injects + s.Closes + s.Rejected + s.Dropped + s.ErrorDrops + s.Cuts
}

// String lists the counters on one line, for test logs.
func (s Stats) String() string {
	return fmt.Sprintf("accepted=%d refused=%d busy=%d resets=%d stalls=%d injects=%d closes=%d rejected=%d dropped=%d error-drops=%d cuts=%d fetch-waits=%d",
		s.Accepted, s.Refused, s.Busy, s.Resets, s.Stalls, s.Injects, s.Closes, s.Rejected, s.Dropped, s.ErrorDrops, s.Cuts, s.FetchWaits)
}

type counters struct {
	accepted, refused, busy, resets, stalls, injects, closes, rejected, dropped, cuts atomic.Int64
	errorDrops, appends, appendMsgs, fetchWaits, fetchWaitNanos                       atomic.Int64
	toServer, toClient                                                                atomic.Int64
}

// Proxy forwards TCP connections from a loopback listener to a target address
// and injects faults. It is safe for concurrent use.
type Proxy struct {
	target string
	ln     net.Listener
	opt    Options

	schedule  atomic.Pointer[Schedule]
	refuse    atomic.Bool
	maxConns  atomic.Int64
	bandwidth atomic.Int64
	next      atomic.Int64 // index of the next connection
	c         counters

	mu         sync.Mutex
	conns      map[*pconn]struct{}
	fetchLocks map[string]chan struct{} // account → its FETCH lock (IMAPRules.FetchPerAccount)
	closed     bool
	wg         sync.WaitGroup
}

// fetchLock returns the FETCH lock of an account: a channel holding one
// token while a FETCH of the account is under way.
func (p *Proxy) fetchLock(account string) chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fetchLocks == nil {
		p.fetchLocks = map[string]chan struct{}{}
	}
	ch := p.fetchLocks[account]
	if ch == nil {
		ch = make(chan struct{}, 1)
		p.fetchLocks[account] = ch
	}
	return ch
}

// Listen starts a proxy on 127.0.0.1 (a free port) that forwards to target.
func Listen(target string, opt Options) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultproxy: listen: %w", err)
	}
	p := &Proxy{target: target, ln: ln, opt: opt, conns: map[*pconn]struct{}{}}
	if p.opt.BusyLine == "" {
		p.opt.BusyLine = DefaultBusyLine
	}
	p.SetSchedule(opt.Schedule)
	p.maxConns.Store(int64(opt.MaxConns))
	p.bandwidth.Store(opt.Bandwidth)
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

// Addr is the proxy's "127.0.0.1:port".
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetSchedule replaces the schedule for connections accepted from now on;
// nil stops new faults. Open connections keep theirs.
func (p *Proxy) SetSchedule(s Schedule) {
	if s == nil {
		p.schedule.Store(nil)
		return
	}
	p.schedule.Store(&s)
}

// SetRefuse makes the proxy reset new connections right after accepting them
// (the client sees a reset or EOF before any byte) while on is true.
func (p *Proxy) SetRefuse(on bool) { p.refuse.Store(on) }

// SetMaxConns changes the cap on concurrent connections; 0 removes it.
func (p *Proxy) SetMaxConns(n int) { p.maxConns.Store(int64(n)) }

// SetBandwidth changes the per-direction limit in bytes per second, also for
// open connections; 0 removes it.
func (p *Proxy) SetBandwidth(bytesPerSecond int64) { p.bandwidth.Store(bytesPerSecond) }

// Active is the number of open forwarded connections.
func (p *Proxy) Active() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

// DropAll resets every open connection now and returns how many it reset.
func (p *Proxy) DropAll() int {
	p.mu.Lock()
	cs := make([]*pconn, 0, len(p.conns))
	for c := range p.conns {
		cs = append(cs, c)
	}
	p.mu.Unlock()
	for _, c := range cs {
		p.c.resets.Add(1)
		c.abort()
	}
	return len(cs)
}

// Stats returns a snapshot of the counters.
func (p *Proxy) Stats() Stats {
	return Stats{
		Accepted: p.c.accepted.Load(), Refused: p.c.refused.Load(), Busy: p.c.busy.Load(),
		Resets: p.c.resets.Load(), Stalls: p.c.stalls.Load(), Injects: p.c.injects.Load(),
		Closes: p.c.closes.Load(), Rejected: p.c.rejected.Load(), Dropped: p.c.dropped.Load(),
		ErrorDrops: p.c.errorDrops.Load(), Cuts: p.c.cuts.Load(), FetchWaits: p.c.fetchWaits.Load(), FetchWaited: time.Duration(p.c.fetchWaitNanos.Load()), Appends: p.c.appends.Load(), AppendedMessages: p.c.appendMsgs.Load(),
		BytesToServer: p.c.toServer.Load(), BytesToClient: p.c.toClient.Load(),
	}
}

// Close stops listening, closes every open connection and waits for all the
// proxy's goroutines to end.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	cs := make([]*pconn, 0, len(p.conns))
	for c := range p.conns {
		cs = append(cs, c)
	}
	p.mu.Unlock()
	err := p.ln.Close()
	for _, c := range cs {
		c.shutdown()
	}
	p.wg.Wait()
	return err
}

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		cc, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go p.handle(cc)
	}
}

func resetConn(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

func (p *Proxy) handle(cc net.Conn) {
	defer p.wg.Done()
	n := int(p.next.Add(1) - 1)
	if p.refuse.Load() {
		p.c.refused.Add(1)
		resetConn(cc)
		return
	}
	var faults []Fault
	if s := p.schedule.Load(); s != nil {
		faults = (*s).Faults(n)
	}
	pc := &pconn{p: p, client: cc, done: make(chan struct{})}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		_ = cc.Close()
		return
	}
	if max := p.maxConns.Load(); max > 0 && int64(len(p.conns)) >= max {
		p.mu.Unlock()
		p.c.busy.Add(1)
		_ = cc.SetWriteDeadline(time.Now().Add(5 * time.Second))
		_, _ = io.WriteString(cc, p.opt.BusyLine)
		_ = cc.Close()
		return
	}
	p.conns[pc] = struct{}{}
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.conns, pc)
		p.mu.Unlock()
	}()

	sc, err := net.DialTimeout("tcp", p.target, 10*time.Second)
	if err != nil {
		resetConn(cc)
		return
	}
	pc.setServer(sc)
	p.c.accepted.Add(1)

	toServer := &faultWriter{pc: pc, dir: ToServer, dst: sc, faults: split(faults, ToServer), count: &p.c.toServer}
	toClient := &faultWriter{pc: pc, dir: ToClient, dst: cc, faults: split(faults, ToClient), count: &p.c.toClient, mu: &pc.clientMu}

	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		var err error
		if p.opt.IMAP != nil {
			err = p.opt.IMAP.pumpCommands(pc, bufio.NewReaderSize(cc, 64<<10), toServer)
		} else {
			_, err = io.CopyBuffer(toServer, cc, make([]byte, 32<<10))
		}
		if err == nil {
			// The client finished sending: pass the half-close on.
			if tc, ok := sc.(*net.TCPConn); ok {
				_ = tc.CloseWrite()
			}
			return
		}
		pc.shutdown()
	}()
	go func() {
		defer wg.Done()
		if p.opt.IMAP != nil {
			_ = p.opt.IMAP.pumpResponses(pc, bufio.NewReaderSize(sc, 64<<10), toClient)
		} else {
			_, _ = io.CopyBuffer(toClient, sc, make([]byte, 32<<10))
		}
		// The server spoke last (or failed): end the whole connection.
		pc.shutdown()
	}()
	wg.Wait()
	pc.shutdown()
	pc.releaseFetch()
}

// pconn is one proxied connection.
type pconn struct {
	p        *Proxy
	client   net.Conn
	clientMu sync.Mutex // serialises writes to client (responses vs. IMAP rule answers)

	cutTag atomic.Value // string: "TAG " of a command whose answer IMAPRules.CutAnswer cuts

	fetchMu   sync.Mutex    // guards account, fetchTag, fetchHeld
	account   string        // logged-in account, for IMAPRules.FetchPerAccount
	fetchTag  string        // "TAG " of the FETCH holding the account's lock
	fetchHeld chan struct{} // the lock held, nil when none

	errMu  sync.Mutex // guards errors
	errors int        // errors in a row, for IMAPRules.MaxConsecutiveErrors

	mu     sync.Mutex
	server net.Conn
	once   sync.Once
	done   chan struct{}
}

func (c *pconn) setServer(s net.Conn) {
	c.mu.Lock()
	c.server = s
	c.mu.Unlock()
	select {
	case <-c.done: // closed while dialling
		_ = s.Close()
	default:
	}
}

func (c *pconn) end(closeFn func(net.Conn)) {
	c.once.Do(func() {
		close(c.done)
		c.mu.Lock()
		s := c.server
		c.mu.Unlock()
		closeFn(c.client)
		if s != nil {
			closeFn(s)
		}
	})
}

// abort resets both sides.
func (c *pconn) abort() { c.end(resetConn) }

// shutdown closes both sides gracefully.
func (c *pconn) shutdown() { c.end(func(n net.Conn) { _ = n.Close() }) }

// writeClient writes b to the client atomically with respect to other writes.
func (c *pconn) writeClient(b []byte) error {
	c.clientMu.Lock()
	defer c.clientMu.Unlock()
	_, err := c.client.Write(b)
	return err
}

// faultWriter forwards bytes in one direction, firing faults at their offsets
// and keeping to the bandwidth limit.
type faultWriter struct {
	pc     *pconn
	dir    Direction
	dst    net.Conn
	mu     *sync.Mutex // held around each Write when not nil
	faults []Fault
	count  *atomic.Int64

	off     int64     // bytes forwarded so far
	bwStart time.Time // start of the current bandwidth window
	bwSent  int64     // bytes sent in it
}

// Write forwards b. It returns errFault when a fault ended the connection.
func (w *faultWriter) Write(b []byte) (int, error) {
	if w.mu != nil {
		w.mu.Lock()
		defer w.mu.Unlock()
	}
	written := 0
	for {
		for len(w.faults) > 0 && w.faults[0].Offset <= w.off {
			f := w.faults[0]
			w.faults = w.faults[1:]
			if err := w.fire(f); err != nil {
				return written, err
			}
		}
		if written == len(b) {
			return written, nil
		}
		chunk := b[written:]
		if len(w.faults) > 0 {
			if lim := w.faults[0].Offset - w.off; int64(len(chunk)) > lim {
				chunk = chunk[:lim]
			}
		}
		n, err := w.send(chunk)
		written += n
		w.off += int64(n)
		w.count.Add(int64(n))
		if err != nil {
			return written, err
		}
	}
}

func (w *faultWriter) fire(f Fault) error {
	c := &w.pc.p.c
	switch f.Kind {
	case Reset:
		c.resets.Add(1)
		w.pc.abort()
		return errFault
	case Close:
		c.closes.Add(1)
		w.pc.shutdown()
		return errFault
	case Stall:
		c.stalls.Add(1)
		if f.Duration <= 0 {
			<-w.pc.done
			return errFault
		}
		t := time.NewTimer(f.Duration)
		defer t.Stop()
		select {
		case <-w.pc.done:
			return errFault
		case <-t.C:
		}
	case Inject:
		c.injects.Add(1)
		if _, err := w.dst.Write(f.Data); err != nil {
			return err
		}
	}
	return nil
}

// send writes b to dst, pacing it when a bandwidth limit is set.
func (w *faultWriter) send(b []byte) (int, error) {
	bw := w.pc.p.bandwidth.Load()
	if bw <= 0 {
		return w.dst.Write(b)
	}
	step := max(bw/50, 1) // about 20 ms worth per write
	sent := 0
	for sent < len(b) {
		if w.bwStart.IsZero() || time.Since(w.bwStart) > time.Second {
			w.bwStart, w.bwSent = time.Now(), 0
		}
		n := min(int64(len(b)-sent), step)
		m, err := w.dst.Write(b[sent : sent+int(n)])
		sent += m
		w.bwSent += int64(m)
		if err != nil {
			return sent, err
		}
		due := time.Duration(float64(w.bwSent) / float64(bw) * float64(time.Second))
		if wait := due - time.Since(w.bwStart); wait > 0 {
			select {
			case <-w.pc.done:
				return sent, errFault
			case <-time.After(wait):
			}
		}
	}
	return sent, nil
}

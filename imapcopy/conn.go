package imapcopy

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/zxmigrate/zxmigrate/internal/imapappend"
	"github.com/zxmigrate/zxmigrate/internal/obs"
	"github.com/zxmigrate/zxmigrate/retry"
)

// DefaultConnsPerServer is the per-server connection budget when a Copier has
// no Budget.
const DefaultConnsPerServer = 16

// ConnBudget caps how many connections are open at once to each server,
// across every Copier that shares it (Zimbra and Carbonio refuse clients
// beyond zimbraImapMaxConnections and lock up with many writers).
//
// A *ConnBudget is safe for concurrent use.
type ConnBudget struct {
	n        int
	mu       sync.Mutex
	m        map[string]chan struct{}
	gate     ConnGate
	idlers   map[string][]idler // the pools that keep idle connections, by server key
	sessions map[string]int     // Copy calls under way, by server key
}

// join counts a Copy under way against the servers keys, until leave is
// called. A server that is both source and destination counts once.
func (b *ConnBudget) join(keys ...string) (leave func()) {
	slices.Sort(keys)
	keys = slices.Compact(keys)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.sessions == nil {
		b.sessions = map[string]int{}
	}
	for _, k := range keys {
		b.sessions[k]++
	}
	return func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, k := range keys {
			b.sessions[k]--
		}
	}
}

// sessionsOf is the number of Copy calls under way against server key.
func (b *ConnBudget) sessionsOf(key string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sessions[key]
}

// share is a Copy's fair part of the budget of server key: its connections
// divided by the Copy calls under way against it.
func (b *ConnBudget) share(key string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.n / max(1, b.sessions[key])
}

// idler is a pool that keeps idle connections under a budget: dropIdle
// closes one of them, freeing its slot, and reports whether there was one.
type idler interface{ dropIdle() bool }

// register adds a pool whose idle connections waiters may reclaim; the
// returned function removes it.
func (b *ConnBudget) register(key string, i idler) (unregister func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.idlers == nil {
		b.idlers = map[string][]idler{}
	}
	b.idlers[key] = append(b.idlers[key], i)
	return func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.idlers[key] = slices.DeleteFunc(b.idlers[key], func(j idler) bool { return j == i })
	}
}

// reclaim closes one idle connection to key kept by any pool of b, so that
// a waiting folder gets its slot: an idle connection of one account (or of
// the append pool) must not keep a folder of another waiting for ever.
func (b *ConnBudget) reclaim(key string) bool {
	b.mu.Lock()
	list := slices.Clone(b.idlers[key])
	b.mu.Unlock()
	for _, i := range list {
		if i.dropIdle() {
			return true
		}
	}
	return false
}

// ConnGate is a second cap that every connection of a ConnBudget must also
// pass, e.g. one shared by several processes (migrate's global budgets in
// a shared state). Keys are the servers' keys ("host:port" for an
// Account). Acquire waits for a slot; TryAcquire does not wait; Release
// gives one back. It must be safe for concurrent use.
type ConnGate interface {
	Acquire(ctx context.Context, key string) error
	TryAcquire(ctx context.Context, key string) bool
	Release(key string)
}

// SetGate makes every connection of b also take a slot of g. Call it
// before b is used.
func (b *ConnBudget) SetGate(g ConnGate) { b.gate = g }

// NewConnBudget returns a budget of n connections per server; n <= 0 means
// DefaultConnsPerServer.
func NewConnBudget(n int) *ConnBudget {
	if n <= 0 {
		n = DefaultConnsPerServer
	}
	return &ConnBudget{n: n, m: map[string]chan struct{}{}}
}

func (b *ConnBudget) sem(key string) chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	s, ok := b.m[key]
	if !ok {
		s = make(chan struct{}, b.n)
		b.m[key] = s
	}
	return s
}

// acquire takes a slot for key, waiting (see waitSlot) while there is
// none.
func (b *ConnBudget) acquire(ctx context.Context, key string) error {
	_, _, err := waitSlot[struct{}](ctx, b, key, nil, nil)
	return err
}

func (b *ConnBudget) release(key string) {
	if b.gate != nil {
		b.gate.Release(key)
	}
	<-b.sem(key)
}

// tryAcquire takes a connection slot for the server key without waiting.
func (b *ConnBudget) tryAcquire(key string) bool {
	select {
	case b.sem(key) <- struct{}{}:
	default:
		return false
	}
	if b.gate != nil && !b.gate.TryAcquire(context.Background(), key) {
		<-b.sem(key)
		return false
	}
	return true
}

func dialerKey(d Dialer) string {
	if k, ok := d.(serverKeyer); ok {
		return k.serverKey()
	}
	return d.String()
}

// pool keeps idle logged-in connections of one Dialer for reuse between
// folders. Every connection it hands out counts against the budget until it
// is closed.
type pool struct {
	side   string // source or destination, for the observer (internal/obs)
	d      Dialer
	budget *ConnBudget
	key    string

	mu         sync.Mutex
	idle       []*conn
	unregister func()
	out        atomic.Int64 // connections handed out and not yet put back
}

// conn is one connection with the bookkeeping our manners need.
type conn struct {
	*imapclient.Client
	p        *pool
	lastCmd  string
	repeats  int
	maxRep   int
	selected string
	guard    *guardConn // nil when the Dialer enforces no limits
}

func newPool(d Dialer, b *ConnBudget) *pool {
	p := &pool{d: d, budget: b, key: dialerKey(d)}
	p.unregister = b.register(p.key, p)
	return p
}

// dropIdle closes the pool's oldest idle connection, freeing its slot.
func (p *pool) dropIdle() bool {
	c, ok := popOldest(&p.mu, &p.idle)
	if ok {
		c.discard()
	}
	return ok
}

// popOldest takes the first of a pool's idle connections, under its lock.
func popOldest[T any](mu *sync.Mutex, idle *[]T) (T, bool) {
	mu.Lock()
	defer mu.Unlock()
	var zero T
	if len(*idle) == 0 {
		return zero, false
	}
	c := (*idle)[0]
	*idle = (*idle)[1:]
	return c, true
}

// busyDials is how many times get dials, with backoff, while the server
// answers the greeting with BYE (Zimbra's "service busy" once its
// connection cap is reached) before the error reaches the folder pass,
// whose attempts are kept for real failures.
const busyDials = 6

// logoutGrace bounds the wait for the answer to LOGOUT.
const logoutGrace = 2 * time.Second

// busyBackoff is the first wait after a busy answer; it doubles each time.
var busyBackoff = 200 * time.Millisecond

// get returns an idle connection or dials a new one.
func (p *pool) get(ctx context.Context, maxRepeat int) (*conn, error) {
	c, err := getBusy(ctx, p.budget, p.key, func() (*conn, bool) {
		c := p.idleConn()
		return c, c != nil
	}, func() bool { return p.out.Load() > 0 }, func(ctx context.Context) (*conn, error) {
		ctx = obs.WithSide(ctx, p.side)
		if gd, ok := p.d.(guardedDialer); ok {
			cl, g, err := gd.dialGuarded(ctx)
			if err != nil {
				return nil, err
			}
			return &conn{Client: cl, p: p, maxRep: maxRepeat, guard: g}, nil
		}
		cl, err := p.d.Dial(ctx)
		if err != nil {
			return nil, err
		}
		return &conn{Client: cl, p: p, maxRep: maxRepeat}, nil
	})
	if err == nil {
		p.out.Add(1)
	}
	return c, err
}

// getBusy returns an idle connection or dials one within the budget. While
// the server answers the greeting with BYE it backs off and tries again, up
// to busyDials dials, taking any connection released meanwhile.
func getBusy[T any](ctx context.Context, b *ConnBudget, key string, idle func() (T, bool), lent func() bool, dial func(context.Context) (T, error)) (T, error) {
	var zero T
	wait := busyBackoff
	for attempt := 1; ; attempt++ {
		if c, ok := idle(); ok {
			return c, nil
		}
		c, ok, err := waitSlot(ctx, b, key, idle, lent)
		if err != nil {
			return zero, err
		}
		if ok {
			return c, nil
		}
		c, err = dial(ctx)
		if err == nil {
			return c, nil
		}
		b.release(key)
		if !isBusy(err) || attempt >= busyDials {
			return zero, err
		}
		obs.From(ctx).Retry(key, "BYE")
		// Busy: wait (with jitter, so that waiting folders do not come
		// back together), then take a connection another folder released
		// or dial again.
		t := time.NewTimer(wait/2 + rand.N(wait))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return zero, ctx.Err()
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// slotPoll is how often a connection waiting for a slot asks again.
const slotPoll = 200 * time.Millisecond

// reclaimAfter is how long a caller whose own pool has connections out
// waits for one of them before it reclaims another pool's idle connection.
const reclaimAfter = 2 * time.Second

// waitSlot takes a slot of b (and of its gate) for key, or, when one is
// put back meanwhile, an idle connection of the caller's pool (ok true;
// idle may be nil). It polls rather than blocks, and closes an idle
// connection of any pool sharing b once it has waited a poll and its own
// pool has none out (lent false, or nil), or once it has waited
// reclaimAfter: pools keep the slots of their idle connections, so a
// folder blocked on a new slot while its own account, or another, kept the
// last ones idle would wait for ever. A pool with connections out gets
// them back as its folders end, so it leaves other accounts' connections
// alone for a while rather than make them log in again.
func waitSlot[T any](ctx context.Context, b *ConnBudget, key string, idle func() (T, bool), lent func() bool) (T, bool, error) {
	var zero T
	start := time.Now()
	for waited := false; ; waited = true {
		if b.tryAcquire(key) {
			return zero, false, nil
		}
		if idle != nil {
			if c, ok := idle(); ok {
				return c, true, nil
			}
		}
		if waited && (lent == nil || !lent() || time.Since(start) >= reclaimAfter) && b.reclaim(key) {
			continue
		}
		t := time.NewTimer(slotPoll/2 + rand.N(slotPoll))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return zero, false, ctx.Err()
		}
	}
}

// isBusy reports whether err is a BYE greeting: the server is at its
// connection cap or shutting down, and a later dial may pass.
func isBusy(err error) bool {
	var ie *imap.Error
	return errors.As(err, &ie) && ie.Type == imap.StatusResponseTypeBye
}

// idleConn returns an idle connection without dialing, or nil.
func (p *pool) idleConn() *conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.idle) > 0 {
		c := p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		select {
		case <-c.Closed():
			p.budget.release(p.key)
			continue
		default:
		}
		return c
	}
	return nil
}

// put returns a healthy connection to the pool; a broken one is closed.
// Every connection handed out (get, session.imapWriters) comes back
// through put.
func (p *pool) put(c *conn, healthy bool) {
	if c == nil {
		return
	}
	p.out.Add(-1)
	if !healthy {
		c.discard()
		return
	}
	c.guard.armBodies(0) // message bodies are read only in a selected folder
	p.mu.Lock()
	p.idle = append(p.idle, c)
	p.mu.Unlock()
}

// discard closes the connection and frees its budget slot.
func (c *conn) discard() {
	c.Client.Close()
	c.p.budget.release(c.p.key)
}

// closeAll logs out and closes every idle connection.
func (p *pool) closeAll() {
	p.unregister()
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	closeEach(idle, func(c *conn) {
		// A server that does not answer LOGOUT must not hold up the end
		// of a Copy (a stop must be prompt).
		t := time.AfterFunc(logoutGrace, func() { c.Client.Close() })
		_ = c.Logout().Wait()
		t.Stop()
		c.discard()
	})
}

// closeEach runs close for every connection in parallel and waits.
func closeEach[T any](conns []T, close func(T)) {
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			close(c)
		}()
	}
	wg.Wait()
}

// tick records that the command name is about to be sent and, after
// maxRep identical commands in a row, interleaves a NOOP: Zimbra drops
// connections that send more than 25 identical commands in a row.
func (c *conn) tick(name string) {
	if c.maxRep <= 0 {
		return
	}
	if name == c.lastCmd {
		c.repeats++
	} else {
		c.lastCmd, c.repeats = name, 1
	}
	if c.repeats >= c.maxRep {
		_ = c.Noop() // answered asynchronously; errors surface on the next command
		c.lastCmd, c.repeats = "NOOP", 1
	}
}

// folderConns holds the connections of one folder pass and closes them all
// when the context ends (go-imap has no context support).
type folderConns struct {
	mu     sync.Mutex
	conns  []*conn
	pools  []*pool
	broken bool
	// writers are the go-imap connections that APPEND: when the pass is
	// cancelled they get appendGrace to hear the answers to APPENDs already
	// sent (a server may commit a whole literal after the client left, and
	// a copy started at once without the state would not see it).
	writers map[*conn]bool
}

// writer marks c, already added, as an APPEND connection.
func (f *folderConns) writer(c *conn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.writers == nil {
		f.writers = map[*conn]bool{}
	}
	f.writers[c] = true
}

func (f *folderConns) add(c *conn, p *pool) {
	f.mu.Lock()
	f.conns = append(f.conns, c)
	f.pools = append(f.pools, p)
	f.mu.Unlock()
}

func (f *folderConns) closeAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.conns {
		if !f.writers[c] {
			c.Client.Close()
			continue
		}
		// The writer stops sending and waits for its answers; the
		// connection is closed only if they do not come in time, and only
		// if the pass still holds it.
		time.AfterFunc(appendGrace, func() {
			f.mu.Lock()
			held := slices.Contains(f.conns, c)
			f.mu.Unlock()
			if held {
				c.Client.Close()
			}
		})
	}
}

func (f *folderConns) release(healthy bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, c := range f.conns {
		if healthy && c.selected != "" {
			if err := c.Unselect().Wait(); err != nil {
				healthy = false
			}
			c.selected = ""
		}
		f.pools[i].put(c, healthy)
	}
	f.conns = nil
}

// appendDialer is implemented by Dialers that open append connections of
// their own (Account): MULTIAPPEND, LITERAL+ and BINARY literals, which
// go-imap lacks. Other Dialers append through go-imap, one message per
// command.
type appendDialer interface {
	dialAppend(ctx context.Context) (*imapappend.Conn, error)
}

// rawConn is an append connection with the bookkeeping of our manners.
type rawConn struct {
	*imapappend.Conn
	repeats int
}

// rawPool keeps idle append connections of the destination for reuse between
// folders. They count against the same budget as its other connections.
type rawPool struct {
	d      appendDialer
	budget *ConnBudget
	key    string

	mu         sync.Mutex
	idle       []*rawConn
	unregister func()
}

func newRawPool(d appendDialer, b *ConnBudget, key string) *rawPool {
	p := &rawPool{d: d, budget: b, key: key}
	p.unregister = b.register(key, p)
	return p
}

// dropIdle closes the pool's oldest idle connection, freeing its slot.
func (p *rawPool) dropIdle() bool {
	c, ok := popOldest(&p.mu, &p.idle)
	if ok {
		_ = c.Close()
		p.budget.release(p.key)
	}
	return ok
}

// idleConn returns an idle connection without dialing.
func (p *rawPool) idleConn() (*rawConn, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.idle) > 0 {
		c := p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		if c.Closed() {
			p.budget.release(p.key)
			continue
		}
		return c, true
	}
	return nil, false
}

// get returns an idle connection, or dials one within the budget, waiting
// for a slot (see waitSlot). It dials once: a server that answers busy is
// at its connection cap, and waiting for an append connection there would
// only keep the caller's other connection from other folders.
func (p *rawPool) get(ctx context.Context) (*rawConn, error) {
	if c, ok := p.idleConn(); ok {
		return c, nil
	}
	c, ok, err := waitSlot(ctx, p.budget, p.key, p.idleConn, nil)
	if err != nil || ok {
		return c, err
	}
	if c, err = p.dial(ctx); err != nil {
		p.budget.release(p.key)
		return nil, err
	}
	return c, nil
}

func (p *rawPool) dial(ctx context.Context) (*rawConn, error) {
	ac, err := p.d.dialAppend(obs.WithSide(ctx, obs.SideDestination))
	if err != nil {
		return nil, err
	}
	return &rawConn{Conn: ac}, nil
}

// tryGet returns an idle connection, or dials one when the budget has room
// at once; nil when neither.
func (p *rawPool) tryGet(ctx context.Context) (*rawConn, error) {
	if c, ok := p.idleConn(); ok {
		return c, nil
	}
	if !p.budget.tryAcquire(p.key) {
		return nil, nil
	}
	c, err := p.dial(ctx)
	if err != nil {
		p.budget.release(p.key)
		return nil, err
	}
	return c, nil
}

// put keeps a usable connection for reuse; a closed one frees its slot.
func (p *rawPool) put(c *rawConn) {
	if c.Closed() {
		p.budget.release(p.key)
		return
	}
	p.mu.Lock()
	p.idle = append(p.idle, c)
	p.mu.Unlock()
}

// closeAll logs out every idle connection.
func (p *rawPool) closeAll() {
	p.unregister()
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	closeEach(idle, func(c *rawConn) {
		_ = c.Close()
		p.budget.release(p.key)
	})
}

// tick counts APPEND commands and interleaves a NOOP after maxRep of them
// in a row (Zimbra's repeated-command throttle).
func (c *rawConn) tick(ctx context.Context, maxRep int) error {
	if maxRep <= 0 {
		return nil
	}
	c.repeats++
	if c.repeats < maxRep {
		return nil
	}
	c.repeats = 1
	return c.Noop(ctx)
}

// rawWait bounds how long a folder pass waits for its first append
// connection before it appends through its go-imap connection instead.
const rawWait = 3 * time.Second

// rawWriters returns up to n append connections for one folder pass. For
// the first it waits up to rawWait for an idle one, or for a slot of the
// budget (reclaiming other pools' idle connections): appends through
// go-imap cost a round trip per message, which over a WAN is far slower
// than a short wait. The others it takes only when the budget has room at
// once. The wait is bounded because the pass already holds a go-imap
// connection to the destination: with a budget of one or two connections,
// or a server at its connection cap (Zimbra's busy greeting), folders
// would otherwise wait for each other. With none, the pass appends
// through go-imap. Only a fatal error (authentication) is returned.
func (s *session) rawWriters(ctx context.Context, n int) ([]*rawConn, error) {
	var out []*rawConn
	for len(out) < n {
		var c *rawConn
		var err error
		if len(out) == 0 {
			wctx, cancel := context.WithTimeout(ctx, rawWait)
			c, err = s.dstRaw.get(wctx)
			cancel()
			if err != nil && ctx.Err() == nil && wctx.Err() != nil {
				s.c.log().Debug("no append connection within the wait; appending through go-imap", "wait", rawWait)
				break
			}
		} else {
			c, err = s.dstRaw.tryGet(ctx)
		}
		if err != nil {
			if retry.Classify(err) == retry.Fatal || ctx.Err() != nil {
				for _, c := range out {
					s.dstRaw.put(c)
				}
				return nil, err
			}
			s.c.log().Debug("no append connection; going on with fewer", "have", len(out), "err", err)
			break
		}
		if c == nil {
			break
		}
		out = append(out, c)
	}
	return out, nil
}

// imapWriters returns dstConn and up to n-1 more go-imap connections.
func (s *session) imapWriters(ctx context.Context, fc *folderConns, dstConn *conn, n int) ([]*conn, error) {
	conns := []*conn{dstConn}
	fc.writer(dstConn)
	for len(conns) < n {
		if cn := s.dst.idleConn(); cn != nil {
			s.dst.out.Add(1)
			fc.add(cn, s.dst)
			fc.writer(cn)
			conns = append(conns, cn)
			continue
		}
		if !s.dst.budget.tryAcquire(s.dst.key) {
			break
		}
		cl, err := s.dst.d.Dial(ctx)
		if err != nil {
			s.dst.budget.release(s.dst.key)
			if retry.Classify(err) == retry.Fatal {
				return nil, err
			}
			break // go on with fewer writers
		}
		cn := &conn{Client: cl, p: s.dst, maxRep: s.c.maxRepeat()}
		s.dst.out.Add(1)
		fc.add(cn, s.dst)
		fc.writer(cn)
		conns = append(conns, cn)
	}
	return conns, nil
}

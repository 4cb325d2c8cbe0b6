package obs

import (
	"context"
	"net"
	"sync"
	"syscall"
)

// SideIMAP is the side of an IMAP connection dialed where no side was set
// with WithSide.
const SideIMAP = "imap"

// CountConn reports c to the observer ctx carries as a connection in use to
// server from side, until it is closed (reported once, however many times
// Close is called). It returns c itself when ctx carries no observer. The
// wrapper keeps syscall.Conn when c has it, for code that peeks at the
// socket.
func CountConn(ctx context.Context, c net.Conn, server, side string) net.Conn {
	o := From(ctx)
	if _, off := o.(Nop); off || c == nil {
		return c
	}
	o.Conn(server, side, 1)
	cc := countedConn{Conn: c, done: sync.OnceFunc(func() { o.Conn(server, side, -1) })}
	if sc, ok := c.(syscall.Conn); ok {
		return &countedSysConn{countedConn: cc, sc: sc}
	}
	return &cc
}

type countedConn struct {
	net.Conn
	done func()
}

// Close implements net.Conn.
func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.done()
	return err
}

type countedSysConn struct {
	countedConn
	sc syscall.Conn
}

// SyscallConn implements syscall.Conn.
func (c *countedSysConn) SyscallConn() (syscall.RawConn, error) { return c.sc.SyscallConn() }

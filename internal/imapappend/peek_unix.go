//go:build unix

package imapappend

import (
	"net"
	"syscall"
)

// peekPending reports whether the peer sent data or closed the connection
// (the next read would not block), without consuming anything: one
// non-blocking recv with MSG_PEEK on the TCP socket. It reports false when
// it cannot tell.
func peekPending(nc net.Conn) bool {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	pending := false
	var buf [1]byte
	_ = rc.Read(func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		pending = n > 0 || (n == 0 && err == nil) // data, or EOF
		return true
	})
	return pending
}

//go:build !unix

package imapappend

import "net"

// peekPending cannot tell on this system: it reports false, and a BYE
// sent while the connection was idle shows when the next command reads.
func peekPending(net.Conn) bool { return false }

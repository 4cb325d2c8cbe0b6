package testserver

import (
	"fmt"
	"net"
)

// MbsyncConfig is the mbsync (isync) configuration the benchmarks run the
// peer with: a one-way pull of every folder from the plaintext IMAP server
// at srcAddr to the one at dstAddr, creating folders, never expunging, and
// keeping arrival dates (CopyArrivalDate), with its sync state under
// state. The same user and password log in on both sides.
func MbsyncConfig(srcAddr, dstAddr, user, srcPass, dstPass, state string) string {
	sh, sp, _ := net.SplitHostPort(srcAddr)
	dh, dp, _ := net.SplitHostPort(dstAddr)
	return fmt.Sprintf(`IMAPAccount A
Host %s
Port %s
User %s
Pass %s
SSLType None
AuthMechs LOGIN

IMAPStore A
Account A

IMAPAccount B
Host %s
Port %s
User %s
Pass %s
SSLType None
AuthMechs LOGIN

IMAPStore B
Account B

Channel AtoB
Far :A:
Near :B:
Patterns *
Create Near
Sync Pull
Expunge None
CopyArrivalDate yes
SyncState %s
`, sh, sp, user, srcPass, dh, dp, user, dstPass, state)
}

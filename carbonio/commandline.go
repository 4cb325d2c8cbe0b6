package carbonio

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

// CommandLine selects where a Client's module commands run: on this
// machine (Local), over SSH (SSH), or nowhere, the zero value, when the
// admin SOAP API is all there is (see Client.UnverifiedSOAP). It is the
// one place that turns a program's settings into a Client.Transport.
type CommandLine struct {
	// Runner, when set, runs the commands (a program's own Runner, or a
	// test double); Local and SSH are then ignored.
	Runner Runner
	// Local runs the commands on this machine.
	Local bool
	// SSH runs the commands over SSH, as SSH.User on SSH.Addr. Closing
	// the Client's transport is the caller's: call SSH.Close when done.
	SSH *SSH
	// RunAs runs the commands through sudo as this user (e.g. zextras);
	// for SSH it is SSH.RunAs when that is empty.
	RunAs string
	// Program is the command: "" means "carbonio"; "zxsuite" for a Zextras
	// Suite source, or a full path.
	Program string
	// MTACtl is the MTA control command; "" means zmmtactl next to
	// Program when Program is a path (both live in /opt/zextras/bin), else
	// "zmmtactl" from PATH.
	MTACtl string
}

// ErrTwoCommandLines is returned by CommandLine.Transport when both Local
// and SSH are set.
var ErrTwoCommandLines = errors.New("carbonio: run the commands locally or over SSH, not both")

// Transport returns the *CLI that c selects, or nil when c selects none:
// the Client then sends module commands over SOAP only with
// UnverifiedSOAP.
func (c CommandLine) Transport() (*CLI, error) {
	var run Runner
	switch {
	case c.Runner != nil:
		run = c.Runner
	case c.Local && c.SSH != nil:
		return nil, ErrTwoCommandLines
	case c.Local:
		run = Local{User: c.RunAs}
	case c.SSH != nil:
		if c.SSH.RunAs == "" {
			c.SSH.RunAs = c.RunAs
		}
		run = c.SSH
	default:
		return nil, nil
	}
	mta := c.MTACtl
	if mta == "" && strings.Contains(c.Program, "/") {
		mta = path.Join(path.Dir(c.Program), "zmmtactl")
	}
	return &CLI{Runner: run, Program: c.Program, MTACtl: mta}, nil
}

// ParseSSH reads USER@HOST[:PORT] into an SSH with that user and address;
// the caller fills in the known_hosts file, keys and RunAs.
func ParseSSH(s string) (*SSH, error) {
	user, host, ok := strings.Cut(s, "@")
	if !ok || user == "" || host == "" {
		return nil, fmt.Errorf("carbonio: ssh %q: want USER@HOST[:PORT]", s)
	}
	return &SSH{Addr: host, User: user}, nil
}

package imapappend

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-sasl"
	"github.com/zxmigrate/zxmigrate/internal/obs"
	"github.com/zxmigrate/zxmigrate/secret"
	"github.com/zxmigrate/zxmigrate/zxerrors"
)

// Security is how a connection is protected; imapcopy.Account.Security
// maps onto it (imapcopy documents and prints the values).
type Security int

// The ways to protect a connection.
const (
	ImplicitTLS Security = iota // TLS before IMAP
	StartTLS                    // STARTTLS, refused when not offered
	Plaintext                   // nothing
)

// Config says how to reach and log in to one mailbox.
type Config struct {
	// Name names the mailbox in error messages; it holds no secret.
	Name string
	// Addr is host:port.
	Addr string
	// Security selects implicit TLS, STARTTLS or plaintext.
	Security Security
	// TLSConfig is used for TLS as given; nil means the system roots,
	// TLS 1.2 at least, and ServerName taken from Addr.
	TLSConfig *tls.Config
	// User is the mailbox to open.
	User string
	// Admin, when set, logs in with SASL PLAIN as Admin on behalf of User
	// (authzid = User, authcid = Admin); Password is then the admin's.
	Admin string
	// Password is the user's password, or the admin's when Admin is set.
	Password secret.Secret
	// DialTimeout bounds connecting and logging in; 0 means 30 s.
	DialTimeout time.Duration
	// IdleTimeout bounds each write of a message body (one 64 KiB
	// buffer), so that a slow but progressing upload is never cut; 0 or
	// negative means no bound.
	IdleTimeout time.Duration
}

// Dial connects, secures and logs in an append connection: TLS verified
// as cfg.TLSConfig says, STARTTLS refused when the server does not offer
// it or sends data before the handshake. A BYE greeting returns an
// *imap.Error of type BYE; authentication failures wrap zxerrors.ErrAuth.
func Dial(ctx context.Context, cfg Config) (*Conn, error) {
	a := &cfg
	timeout := cfg.DialTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	nc, err := (&net.Dialer{}).DialContext(ctx, "tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("imapappend: connect %s: %w", cfg.Addr, zxerrors.Connect(err))
	}
	// In use, for the observer ctx carries, until closed.
	nc = obs.CountConn(ctx, nc, cfg.Addr, obs.Side(ctx, obs.SideIMAP))
	raw := nc
	var c *Conn
	// Closing the TCP connection aborts a TLS handshake or a read too.
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer stop()
	fail := func(err error) (*Conn, error) {
		raw.Close()
		if c != nil {
			c.Kill()
		}
		if ctx.Err() != nil {
			return nil, errors.Join(err, ctx.Err())
		}
		return nil, err
	}

	tcfg := a.TLSConfig
	if tcfg == nil {
		host, _, _ := net.SplitHostPort(a.Addr)
		tcfg = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host}
	}
	switch a.Security {
	case ImplicitTLS:
		tc := tls.Client(nc, tcfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return fail(fmt.Errorf("imapappend: tls %s: %w", a.Addr, zxerrors.Connect(err)))
		}
		nc = tc
	case StartTLS, Plaintext:
	default:
		return fail(fmt.Errorf("imapappend: unknown security %d", a.Security))
	}
	c = newConn(a.Name, nc, raw)
	c.idle = max(a.IdleTimeout, 0)

	g, err := c.rr.read(c.lineTimeout)
	if err != nil {
		return fail(fmt.Errorf("imapappend: greeting from %s: %w", a.Addr, err))
	}
	switch {
	case g.kind == respUntagged && g.status == imap.StatusResponseTypeOK:
	case g.kind == respUntagged && g.status == imap.StatusResponseTypeBye:
		return fail(fmt.Errorf("imapappend: greeting from %s: %w", a.Addr, g.err()))
	default:
		return fail(fmt.Errorf("imapappend: greeting from %s: unexpected %q", a.Addr, g.status))
	}
	if g.code == "CAPABILITY" {
		c.cs = parseCaps(strings.Fields(g.arg))
	}

	if a.Security == StartTLS {
		if !c.cs.known {
			if _, err := c.simple(ctx, "CAPABILITY"); err != nil {
				return fail(fmt.Errorf("imapappend: capability %s: %w", a.Addr, err))
			}
		}
		if !c.cs.startTLS {
			return fail(zxerrors.Mark(fmt.Errorf("imapappend: starttls %s: the server does not offer STARTTLS", a.Addr), zxerrors.ErrTLS))
		}
		if _, err := c.simple(ctx, "STARTTLS"); err != nil {
			return fail(fmt.Errorf("imapappend: starttls %s: %w", a.Addr, zxerrors.Mark(err, zxerrors.ErrTLS)))
		}
		if c.rr.br.Buffered() > 0 {
			// Bytes sent before the handshake could be injected
			// responses (CVE-2011-0411 style): refuse.
			return fail(fmt.Errorf("imapappend: starttls %s: the server sent data before the TLS handshake", a.Addr))
		}
		tc := tls.Client(nc, tcfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return fail(fmt.Errorf("imapappend: starttls %s: %w", a.Addr, zxerrors.Connect(err)))
		}
		nc = tc
		c.setConn(tc)
		c.cs = capSet{}
	}
	if !c.cs.known {
		if _, err := c.simple(ctx, "CAPABILITY"); err != nil {
			return fail(fmt.Errorf("imapappend: capability %s: %w", a.Addr, err))
		}
	}
	if err := c.login(ctx, a); err != nil {
		return fail(err)
	}
	if !c.cs.known {
		if _, err := c.simple(ctx, "CAPABILITY"); err != nil {
			return fail(fmt.Errorf("imapappend: capability %s: %w", a.Addr, err))
		}
	}
	if !stop() || ctx.Err() != nil {
		return fail(fmt.Errorf("imapappend: login to %s: %w", a.Addr, ctx.Err()))
	}
	_ = nc.SetDeadline(time.Time{})
	c.ready = true
	return c, nil
}

// login authenticates as imapcopy.Account does with go-imap: an admin
// with SASL PLAIN on behalf of the user, AUTHENTICATE PLAIN when LOGIN is disabled, else
// LOGIN. It takes the capabilities from the answer's CAPABILITY code, or
// forgets the old ones so that the caller asks again.
func (c *Conn) login(ctx context.Context, a *Config) error {
	pass := a.Password.Reveal()
	pre := c.cs
	var r response
	var err error
	switch {
	case a.Admin != "":
		if !pre.authPlain && !pre.rev2 {
			return fmt.Errorf("imapappend: %s: admin login needs AUTH=PLAIN, which the server does not offer", a.Name)
		}
		r, err = c.authenticate(ctx, sasl.NewPlainClient(a.User, a.Admin, pass))
	case pre.loginDisabled:
		r, err = c.authenticate(ctx, sasl.NewPlainClient("", a.User, pass))
	default:
		r, err = c.loginCmd(ctx, a.User, pass)
	}
	if err != nil {
		return fmt.Errorf("imapappend: login to %s: %w", a.Name, err)
	}
	switch r.status {
	case imap.StatusResponseTypeOK:
	case imap.StatusResponseTypeNo, imap.StatusResponseTypeBad:
		if r.code == imap.ResponseCodeUnavailable {
			return fmt.Errorf("imapappend: login to %s: %w", a.Name, r.err())
		}
		return fmt.Errorf("imapappend: login to %s: %w: %w", a.Name, zxerrors.ErrAuth, r.err())
	default:
		return c.fail(ctx, fmt.Errorf("imapappend: login to %s: unexpected %q", a.Name, r.status))
	}
	if r.code == "CAPABILITY" {
		c.cs = parseCaps(strings.Fields(r.arg))
	} else if c.cs == pre {
		c.cs = capSet{} // the pre-login list is stale
	}
	return nil
}

// loginCmd sends LOGIN user pass and returns the tagged answer.
func (c *Conn) loginCmd(ctx context.Context, user, pass string) (response, error) {
	tag := c.nextTag()
	if err := c.setWriteDeadline(c.lineTimeout); err != nil {
		return response{}, c.fail(ctx, err)
	}
	c.bw.WriteString(tag + " LOGIN ")
	for i, s := range []string{user, pass} {
		if i > 0 {
			c.bw.WriteByte(' ')
		}
		if isQuotable(s) {
			c.writeQuoted(s)
			continue
		}
		r, done, err := c.literalHeader(ctx, tag, int64(len(s)), false)
		if err != nil || done {
			return r, err
		}
		c.bw.WriteString(s)
	}
	c.bw.WriteString("\r\n")
	if err := c.bw.Flush(); err != nil {
		return response{}, c.failWrite(ctx, "login", err)
	}
	return c.waitTagged(ctx, tag, c.lineTimeout)
}

// authenticate runs AUTHENTICATE with the SASL client and returns the
// tagged answer.
func (c *Conn) authenticate(ctx context.Context, sc sasl.Client) (response, error) {
	mech, ir, err := sc.Start()
	if err != nil {
		return response{}, fmt.Errorf("sasl: %w", err)
	}
	tag := c.nextTag()
	if err := c.setWriteDeadline(c.lineTimeout); err != nil {
		return response{}, c.fail(ctx, err)
	}
	c.bw.WriteString(tag + " AUTHENTICATE " + mech)
	if ir != nil && c.cs.saslIR {
		c.bw.WriteByte(' ')
		c.writeSASL(ir)
		ir = nil
	}
	c.bw.WriteString("\r\n")
	for {
		if err := c.bw.Flush(); err != nil {
			return response{}, c.failWrite(ctx, "authenticate", err)
		}
		r, err := c.rr.read(c.lineTimeout)
		if err != nil {
			return response{}, c.fail(ctx, err)
		}
		switch {
		case r.kind == respCont:
			var resp []byte
			if ir != nil {
				resp, ir = ir, nil
			} else {
				ch, derr := base64.StdEncoding.DecodeString(strings.TrimSpace(r.text))
				if derr == nil {
					resp, derr = sc.Next(ch)
				}
				if derr != nil {
					c.bw.WriteString("*\r\n") // cancel; the server answers BAD
					continue
				}
			}
			c.writeSASL(resp)
			c.bw.WriteString("\r\n")
		case r.kind == respTagged && r.tag == tag:
			return r, nil
		case r.kind == respTagged:
			return response{}, c.fail(ctx, fmt.Errorf("unexpected tag %q", r.tag))
		case r.status == imap.StatusResponseTypeBye:
			return response{}, c.fail(ctx, &byeError{text: r.text})
		case r.isCaps:
			c.cs = parseCaps(r.caps)
		}
	}
}

func (c *Conn) writeSASL(b []byte) {
	if len(b) == 0 {
		c.bw.WriteByte('=')
		return
	}
	buf := c.bw.AvailableBuffer()
	c.bw.Write(base64.StdEncoding.AppendEncode(buf, b))
}

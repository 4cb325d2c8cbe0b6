package imapcopy

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"

	"github.com/zxmigrate/zxmigrate/internal/imapappend"
	"github.com/zxmigrate/zxmigrate/internal/obs"
	"github.com/zxmigrate/zxmigrate/secret"
	"github.com/zxmigrate/zxmigrate/zxerrors"
)

// Security is how a connection is protected.
type Security int

const (
	// ImplicitTLS opens TLS before IMAP (imaps://, port 993).
	ImplicitTLS Security = iota
	// StartTLS upgrades a plain connection with STARTTLS (imap://, port 143)
	// and fails when the server does not offer it.
	StartTLS
	// Plaintext sends everything, the password included, in clear. Use it
	// only on loopback or trusted networks.
	Plaintext
)

// String returns "imaps", "starttls" or "plaintext".
func (s Security) String() string {
	switch s {
	case StartTLS:
		return "starttls"
	case Plaintext:
		return "plaintext"
	default:
		return "imaps"
	}
}

// Dialer opens authenticated IMAP connections to one mailbox.
type Dialer interface {
	// Dial connects and logs in. It must honour ctx while connecting.
	Dial(ctx context.Context) (*imapclient.Client, error)
	// String names the mailbox for reports, without any secret.
	String() string
}

// serverKeyer is implemented by Dialers that know which server they reach;
// ConnBudget counts connections per server key.
type serverKeyer interface{ serverKey() string }

// Account is an IMAP mailbox reached with a user or admin login. It
// implements Dialer. The zero Security is ImplicitTLS.
//
// An Account is safe for concurrent use once set up.
type Account struct {
	// Addr is host:port.
	Addr string
	// Security selects implicit TLS, STARTTLS or plaintext.
	Security Security
	// TLSConfig is used for TLS; nil means the system roots with
	// verification on and ServerName taken from Addr.
	TLSConfig *tls.Config
	// User is the mailbox to open.
	User string
	// Admin, when set, logs in with SASL PLAIN as Admin on behalf of User
	// (authzid = User, authcid = Admin); Password is then the admin's.
	Admin string
	// Password is the user's password, or the admin's when Admin is set.
	Password secret.Secret
	// DialTimeout bounds connecting and logging in; 0 means 30s.
	DialTimeout time.Duration
	// IdleTimeout ends a connection on which the server sends nothing for
	// this long while an answer is due, or on which a write makes no
	// progress for this long. It is applied as deadlines that move with
	// every byte, so a slow but progressing transfer is never cut. 0
	// means DefaultIdleTimeout; negative disables it.
	IdleTimeout time.Duration
	// MaxLine caps one line the server sends (literals excluded); 0 means
	// DefaultMaxLine.
	MaxLine int64
	// MaxLiteral caps a literal outside message bodies (mailbox names,
	// header fields); 0 means DefaultMaxLiteral. A message body may be as
	// large as its announced RFC822.SIZE plus a margin.
	MaxLiteral int64
}

// idleTimeout is IdleTimeout with its default.
func (a *Account) idleTimeout() time.Duration {
	switch {
	case a.IdleTimeout < 0:
		return 0
	case a.IdleTimeout == 0:
		return DefaultIdleTimeout
	}
	return a.IdleTimeout
}

// guard wraps the plaintext side of a connection with the limits of a.
func (a *Account) guard(c net.Conn) *guardConn {
	return newGuard(c, a.idleTimeout(), a.MaxLine, a.MaxLiteral)
}

// guardedDialer is implemented by Dialers whose connections enforce
// limits: the copier raises the literal cap while it reads message bodies.
type guardedDialer interface {
	dialGuarded(ctx context.Context) (*imapclient.Client, *guardConn, error)
}

// ParseURL parses imap[s]://USER@HOST[:PORT]. imaps:// selects ImplicitTLS
// (port 993), imap:// selects StartTLS (port 143). A password in the URL is
// refused: secrets never travel in arguments.
func ParseURL(raw string) (*Account, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("imapcopy: parse url: %w", err)
	}
	a := &Account{}
	port := ""
	switch strings.ToLower(u.Scheme) {
	case "imaps":
		a.Security, port = ImplicitTLS, "993"
	case "imap":
		a.Security, port = StartTLS, "143"
	default:
		return nil, fmt.Errorf("imapcopy: url %q: scheme must be imap or imaps", redactURL(raw))
	}
	if u.User == nil || u.User.Username() == "" {
		return nil, fmt.Errorf("imapcopy: url %q: no user (imap[s]://USER@HOST[:PORT])", redactURL(raw))
	}
	if _, set := u.User.Password(); set {
		return nil, fmt.Errorf("imapcopy: url %q: passwords are not accepted in URLs; use the environment or a password file", redactURL(raw))
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("imapcopy: url %q: no host", redactURL(raw))
	}
	if u.Path != "" && u.Path != "/" {
		return nil, fmt.Errorf("imapcopy: url %q: unexpected path %q", redactURL(raw), u.Path)
	}
	if u.Port() != "" {
		port = u.Port()
	}
	a.User = u.User.Username()
	a.Addr = net.JoinHostPort(u.Hostname(), port)
	return a, nil
}

func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	if _, set := u.User.Password(); set {
		u.User = url.UserPassword(u.User.Username(), "REDACTED")
	}
	return u.String()
}

// String returns scheme://user@host:port, naming the admin when one is used.
func (a *Account) String() string {
	scheme := "imaps"
	if a.Security != ImplicitTLS {
		scheme = "imap"
	}
	s := scheme + "://" + a.User + "@" + a.Addr
	if a.Admin != "" {
		s += " (as admin " + a.Admin + ")"
	}
	return s
}

func (a *Account) serverKey() string { return a.Addr }

// Dial connects, secures and authenticates a connection. Authentication
// failures wrap zxerrors.ErrAuth. The connection enforces IdleTimeout and
// MaxLine; since its caller may fetch message bodies, it accepts literals
// up to MaxDialLiteral (the Copier's own connections accept MaxLiteral
// outside message bodies, and a body up to its announced size).
func (a *Account) Dial(ctx context.Context) (*imapclient.Client, error) {
	c, g, err := a.dialGuarded(ctx)
	if err != nil {
		return nil, err
	}
	g.armBodies(MaxDialLiteral)
	return c, nil
}

// MaxDialLiteral caps every literal on a connection returned by
// Account.Dial.
const MaxDialLiteral = 4 << 30

// dialGuarded is Dial that also returns the connection's guard.
func (a *Account) dialGuarded(ctx context.Context) (cl *imapclient.Client, g *guardConn, err error) {
	defer func() {
		if err != nil {
			err = a.dialFailed(ctx, err)
		}
	}()
	ctx, cancel := a.dialContext(ctx)
	defer cancel()
	conn, err := a.connect(ctx)
	if err != nil {
		return nil, nil, err
	}
	// go-imap has no context: close the connection to abort a handshake.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	tcfg := a.tlsConfig()
	opts := &imapclient.Options{TLSConfig: tcfg}
	switch a.Security {
	case ImplicitTLS:
		tc := tls.Client(conn, tcfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, nil, fmt.Errorf("imapcopy: tls %s: %w", a.Addr, zxerrors.Connect(err))
		}
		g = a.guard(tc)
	case StartTLS:
		tc, err := a.startTLS(ctx, conn, tcfg)
		if err != nil {
			conn.Close()
			return nil, nil, fmt.Errorf("imapcopy: starttls %s: %w", a.Addr, ctxErr(ctx, err))
		}
		// The greeting came before TLS; go-imap waits for one: give it a
		// bare one, so that it asks for the capabilities over TLS.
		g = a.guard(&prefixConn{Conn: tc, prefix: []byte("* OK TLS established\r\n")})
	case Plaintext:
		g = a.guard(conn)
	default:
		conn.Close()
		return nil, nil, fmt.Errorf("imapcopy: unknown security %d", a.Security)
	}
	c := imapclient.New(g, opts)
	if err := c.WaitGreeting(); err != nil {
		c.Close()
		return nil, nil, fmt.Errorf("imapcopy: greeting from %s: %w", a.Addr, ctxErr(ctx, err))
	}
	if err := a.login(c); err != nil {
		c.Close()
		return nil, nil, ctxErr(ctx, err)
	}
	if ctx.Err() != nil {
		c.Close()
		return nil, nil, fmt.Errorf("imapcopy: login to %s: %w", a.Addr, ctx.Err())
	}
	g.settle()
	return c, g, nil
}

// ErrStartTLSRefused is wrapped by the error of a connection whose server
// answered STARTTLS with anything but OK: it offers no TLS on that port.
// It matches zxerrors.ErrTLS.
var ErrStartTLSRefused = zxerrors.Mark(errors.New("the server refused STARTTLS"), zxerrors.ErrTLS)

// startTLS reads the greeting and runs STARTTLS (RFC 3501 §6.2.1) on the
// plain connection, under the same line limit as everything else, and
// returns the TLS connection. A BYE greeting returns an *imap.Error of type
// BYE; a PREAUTH greeting is refused (RFC 3501 §6.2.1: no STARTTLS after
// PREAUTH).
func (a *Account) startTLS(ctx context.Context, conn net.Conn, tcfg *tls.Config) (net.Conn, error) {
	g := a.guard(conn)
	defer g.settle()
	g.idle = min(g.idle, 30*time.Second)
	if g.idle <= 0 {
		g.idle = 30 * time.Second
	}
	br := bufio.NewReaderSize(g, 4096)
	readLine := func() (string, error) {
		var line []byte
		for {
			frag, err := br.ReadSlice('\n')
			line = append(line, frag...)
			if err == nil {
				return strings.TrimRight(string(line), "\r\n"), nil
			}
			if err != bufio.ErrBufferFull {
				return "", err
			}
		}
	}
	greet, err := readLine()
	if err != nil {
		return nil, fmt.Errorf("greeting: %w", err)
	}
	switch word := strings.ToUpper(strings.Fields(greet + " x x")[1]); word {
	case "OK":
	case "BYE":
		return nil, &imap.Error{Type: imap.StatusResponseTypeBye, Text: clipText(greet)}
	case "PREAUTH":
		return nil, errors.New("server sent PREAUTH on an unencrypted connection")
	default:
		return nil, fmt.Errorf("unexpected greeting %q", clipText(greet))
	}
	if _, err := g.Write([]byte("S1 STARTTLS\r\n")); err != nil {
		return nil, err
	}
	for {
		line, err := readLine()
		if err != nil {
			return nil, err
		}
		if !strings.HasPrefix(line, "S1 ") {
			continue // untagged data (a CAPABILITY, an ALERT)
		}
		if f := strings.Fields(line); len(f) < 2 || !strings.EqualFold(f[1], "OK") {
			return nil, fmt.Errorf("%w: %q", ErrStartTLSRefused, clipText(line))
		}
		break
	}
	if br.Buffered() > 0 {
		// Bytes sent before the handshake could be injected responses
		// (CVE-2011-0411 style): refuse.
		return nil, errors.New("the server sent data before the TLS handshake")
	}
	tc := tls.Client(conn, tcfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, zxerrors.Connect(err)
	}
	return tc, nil
}

// clipText shortens server text quoted in an error.
func clipText(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}

// prefixConn is a net.Conn whose reads start with prefix.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (p *prefixConn) Read(b []byte) (int, error) {
	if len(p.prefix) > 0 {
		n := copy(b, p.prefix)
		p.prefix = p.prefix[n:]
		return n, nil
	}
	return p.Conn.Read(b)
}

// dialContext bounds connecting and logging in by DialTimeout (30 s when
// unset).
func (a *Account) dialContext(ctx context.Context) (context.Context, context.CancelFunc) {
	timeout := a.DialTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	return context.WithTimeout(ctx, timeout)
}

// connect opens the TCP connection to Addr. It counts as a connection in
// use, for the observer ctx carries (internal/obs), until it is closed.
func (a *Account) connect(ctx context.Context) (net.Conn, error) {
	d := &net.Dialer{}
	conn, err := d.DialContext(ctx, "tcp", a.Addr)
	if err != nil {
		return nil, obs.Mark(fmt.Errorf("imapcopy: connect %s: %w", a.Addr, zxerrors.Connect(err)), a.Addr)
	}
	return obs.CountConn(ctx, conn, a.Addr, obs.Side(ctx, obs.SideIMAP)), nil
}

// dialFailed reports a throttle answer (a BYE greeting, NO [UNAVAILABLE]
// to the login) to the observer ctx carries and names the server in err,
// for the retry loops.
func (a *Account) dialFailed(ctx context.Context, err error) error {
	if w := obs.Answer(err); w != "" {
		obs.From(ctx).Throttle(a.Addr, w)
	}
	return obs.Mark(err, a.Addr)
}

// tlsConfig is the TLS configuration of a connection: a copy of TLSConfig
// (or system roots, TLS 1.2 at least), ServerName from Addr when unset.
func (a *Account) tlsConfig() *tls.Config {
	host, _, _ := net.SplitHostPort(a.Addr)
	tcfg := a.TLSConfig
	if tcfg == nil {
		tcfg = &tls.Config{MinVersion: tls.VersionTLS12}
	} else {
		tcfg = tcfg.Clone()
	}
	if tcfg.ServerName == "" {
		tcfg.ServerName = host
	}
	return tcfg
}

func (a *Account) login(c *imapclient.Client) error {
	pass := a.Password.Reveal()
	var err error
	switch {
	case a.Admin != "":
		if !c.Caps().Has(imap.Cap("AUTH=PLAIN")) && !c.Caps().Has(imap.CapIMAP4rev2) {
			return fmt.Errorf("imapcopy: %s: admin login needs AUTH=PLAIN, which the server does not offer", a)
		}
		err = c.Authenticate(sasl.NewPlainClient(a.User, a.Admin, pass))
	case c.Caps().Has(imap.CapLoginDisabled):
		err = c.Authenticate(sasl.NewPlainClient("", a.User, pass))
	default:
		err = c.Login(a.User, pass).Wait()
	}
	if err == nil {
		return nil
	}
	var ie *imap.Error
	if errors.As(err, &ie) && (ie.Type == imap.StatusResponseTypeNo || ie.Type == imap.StatusResponseTypeBad) &&
		ie.Code != imap.ResponseCodeUnavailable {
		return fmt.Errorf("imapcopy: login to %s: %w: %w", a, zxerrors.ErrAuth, err)
	}
	return fmt.Errorf("imapcopy: login to %s: %w", a, err)
}

func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return errors.Join(err, ctx.Err())
	}
	return err
}

// dialAppend opens an append connection (package imapappend) with the same
// address, TLS rules and login as Dial.
func (a *Account) dialAppend(ctx context.Context) (ac *imapappend.Conn, err error) {
	defer func() {
		if err != nil {
			err = a.dialFailed(ctx, err)
		}
	}()
	sec := imapappend.ImplicitTLS
	switch a.Security {
	case ImplicitTLS:
	case StartTLS:
		sec = imapappend.StartTLS
	case Plaintext:
		sec = imapappend.Plaintext
	default:
		return nil, fmt.Errorf("imapcopy: unknown security %d", a.Security)
	}
	return imapappend.Dial(ctx, imapappend.Config{
		Name: a.String(), Addr: a.Addr, Security: sec, TLSConfig: a.tlsConfig(),
		User: a.User, Admin: a.Admin, Password: a.Password,
		DialTimeout: a.DialTimeout, IdleTimeout: a.idleTimeout(),
	})
}

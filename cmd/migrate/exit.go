package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/zxmigrate/zxmigrate/carbonio"
	"github.com/zxmigrate/zxmigrate/imapcopy"
	"github.com/zxmigrate/zxmigrate/migrate"
	"github.com/zxmigrate/zxmigrate/state"
	"github.com/zxmigrate/zxmigrate/termsafe"
	"github.com/zxmigrate/zxmigrate/zxerrors"
)

// Exit codes. README.md documents them; keep the two in step.
const (
	exitOK          = 0   // everything copied and verified
	exitInternal    = 1   // unexpected error: a bug or an environment problem
	exitUsage       = 2   // bad flags, bad plan, missing credential, a state file that is not ours or is in use
	exitPartial     = 3   // finished, but some items were skipped, failed or did not verify
	exitAuth        = 4   // a server refused our credentials (or an SSH host key did not match)
	exitUnreachable = 5   // a server could not be reached, or not securely (certificate, TLS, STARTTLS)
	exitInterrupted = 130 // interrupted (Ctrl-C, SIGTERM); state was saved
)

// usageError marks bad input from the user: flags, plan, credentials' sources.
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

// errPartial is returned by a command that printed its report and found
// items skipped, failed or unverified.
var errPartial = reportedError{errors.New("finished with skipped, failed or unverified items")}

// reportedError is an error whose details the command already printed.
type reportedError struct{ err error }

func (r reportedError) Error() string { return r.err.Error() }
func (r reportedError) Unwrap() error { return r.err }

func isReported(err error) bool {
	var r reportedError
	return errors.As(err, &r)
}

// exitCode maps the outcome of a command to the process exit code. It is the
// only place that does so, for every command: it reads the error chain, so a
// connection refused in `mail`, in `calendars` or in a plan run is the same 5.
func exitCode(ctx context.Context, err error) int {
	if err == nil {
		return exitOK
	}
	if ctx.Err() != nil || errors.Is(err, context.Canceled) {
		return exitInterrupted
	}
	var (
		ue  usageError
		pe  *migrate.PlanError
		ae  *migrate.AccountError
		se  *migrate.ServerError
		nse *state.NotStateError
		le  *state.LockedError
	)
	switch {
	case errors.As(err, &ue), errors.As(err, &pe), errors.As(err, &ae),
		errors.As(err, &nse), errors.As(err, &le), errors.Is(err, carbonio.ErrNoTransport), isCobraUsage(err):
		return exitUsage
	case errors.Is(err, zxerrors.ErrAuth): // carbonio.ErrHostKey too
		return exitAuth
	case errors.Is(err, errPartial):
		return exitPartial
	case errors.Is(err, zxerrors.ErrUnreachable), errors.Is(err, zxerrors.ErrTLS),
		errors.As(err, &se) && se.Unreachable(), connectionProblem(err) != nil:
		return exitUnreachable
	}
	return exitInternal
}

// problem is an operator's account of an error: what failed, and what to do.
type problem struct {
	what string
	todo string
}

// connectionProblem recognises failures to reach a server, or to reach it
// securely, and says what to do about each. It returns nil for other errors.
func connectionProblem(err error) *problem {
	var (
		dnsErr   *net.DNSError
		opErr    *net.OpError
		unknown  x509.UnknownAuthorityError
		hostErr  x509.HostnameError
		certErr  *tls.CertificateVerificationError
		recErr   tls.RecordHeaderError
		imapErr  *imap.Error
		invalid  x509.CertificateInvalidError
		netError net.Error
		se       *migrate.ServerError
		idle     idleError
	)
	// server names the server: by plan key in a plan run, else by address.
	server := func(fallback string) string {
		if errors.As(err, &se) {
			return fmt.Sprintf("%s (%s)", se.Key, se.Address)
		}
		if fallback == "" {
			return "the server"
		}
		return fallback
	}
	switch {
	case errors.As(err, &unknown), errors.As(err, &certErr), errors.As(err, &invalid):
		return &problem{"the certificate of " + server("the server") + " is not trusted: " + rootCause(err),
			"trust its CA with --ca-file (ca_file in a plan)"}
	case errors.As(err, &hostErr):
		return &problem{"the certificate of " + server("the server") + " is for another name: " + rootCause(err),
			"use the host name the certificate names, or fix the certificate"}
	case errors.Is(err, http.ErrSchemeMismatch):
		return &problem{server("the server") + " did not answer with TLS: the port speaks plain HTTP",
			"use the server's HTTPS port (admin 7071, DAV 443), or http:// with --allow-plaintext where the command offers it"}
	case errors.As(err, &recErr):
		return &problem{server("the server") + " did not answer with TLS: the port speaks plaintext",
			"use imap:// (STARTTLS, usually port 143) or the server's implicit-TLS port (usually 993)"}
	case startTLSRefused(err, &imapErr):
		return &problem{server("the server") + " does not offer STARTTLS on this port",
			"use imaps:// (implicit TLS, port 993), or --allow-plaintext to send the password unencrypted (test servers only)"}
	case errors.As(err, &dnsErr):
		return &problem{fmt.Sprintf("cannot reach %s: no such host", server(dnsErr.Name)),
			"check the host name"}
	case errors.Is(err, syscall.ECONNREFUSED):
		addr := ""
		if errors.As(err, &opErr) && opErr.Addr != nil {
			addr = opErr.Addr.String()
		}
		return &problem{"cannot reach " + server(addr) + ": connection refused",
			"check the host and port, and that the server is running"}
	case errors.As(err, &idle):
		return &problem{fmt.Sprintf("no data from %s for %s (idle timeout)", server("the server"), idle.IdleTimeout()),
			"raise --idle-timeout if the server is slow but alive; run the same command again: it resumes"}
	case errors.As(err, &opErr) && opErr.Op != "dial":
		return &problem{"lost the connection to " + server("the server") + ": " + rootCause(err),
			"run the same command again: it resumes; if it keeps failing, check the network and the server's load"}
	case errors.As(err, &opErr), errors.As(err, &netError) && netError.Timeout():
		return &problem{"cannot reach " + server("the server") + ": " + rootCause(err),
			"check the address, the network and any firewall in between"}
	}
	return nil
}

// idleError is a request that failed because its connection moved no
// byte for the idle timeout (the HTTP clients of migrate.NewHTTPClient).
type idleError interface {
	error
	IdleTimeout() time.Duration
}

// startTLSRefused reports whether err is a STARTTLS upgrade the server
// refused or did not understand. imapcopy names the step "starttls" in the
// message and wraps the server's answer (or the EOF of a server that hung
// up).
func startTLSRefused(err error, ie **imap.Error) bool {
	if errors.Is(err, imapcopy.ErrStartTLSRefused) {
		return true
	}
	if !strings.Contains(err.Error(), "starttls ") {
		return false
	}
	return errors.As(err, ie) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// describe turns err into what the operator reads: what failed, in the
// operator's words, and what to do. Several errors joined (two servers
// unreachable) are described one by one.
func describe(err error) problem {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if _, ok := e.(*migrate.ServerError); ok {
			break // one server: its error is one problem
		}
		m, ok := e.(interface{ Unwrap() []error })
		if !ok {
			continue
		}
		if errs := m.Unwrap(); len(errs) > 1 {
			var whats, todos []string
			for _, sub := range errs {
				p := describe(sub)
				whats = append(whats, p.what)
				if p.todo != "" && !slices.Contains(todos, p.todo) {
					todos = append(todos, p.todo)
				}
			}
			return problem{what: strings.Join(whats, "; "), todo: strings.Join(todos, "; ")}
		}
		break
	}
	return describeOne(err)
}

func describeOne(err error) problem {
	var (
		nse *state.NotStateError
		le  *state.LockedError
		pe  *migrate.PlanError
		ae  *migrate.AccountError
	)
	switch {
	case errors.Is(err, context.Canceled):
		return problem{what: "interrupted", todo: "run the same command again: it resumes from the state saved"}
	case errors.As(err, &nse):
		return problem{what: nse.Error()}
	case errors.As(err, &le):
		return problem{what: le.Error()}
	case errors.As(err, &pe):
		p := problem{what: strip(err.Error())}
		if pe.File != "" {
			p.todo = "'migrate plan check FILE' checks a plan; 'migrate plan init FILE' writes an annotated one"
		}
		return p
	case errors.As(err, &ae):
		return problem{what: strip(ae.Error())}
	case errors.Is(err, carbonio.ErrHostKey):
		return problem{what: strip(err.Error()), todo: "check the host key, then add it to the known_hosts file (--ssh-known-hosts)"}
	case errors.Is(err, carbonio.ErrNoTransport):
		return problem{what: strip(err.Error()), todo: "give --ssh USER@HOST or --local-cli, or --unverified-soap"}
	case errors.Is(err, zxerrors.ErrAuth):
		what := "a server refused the credentials: " + strip(err.Error())
		if se := (*migrate.ServerError)(nil); errors.As(err, &se) {
			what = fmt.Sprintf("%s (%s) refused the credentials: %s", se.Key, se.Address, strip(se.Err.Error()))
		}
		return problem{what: what,
			todo: "check the user and the password (MIGRATE_*_PASSWORD or --*-password-file)"}
	}
	var ue usageError
	if errors.As(err, &ue) {
		return problem{what: strip(err.Error())}
	}
	if p := connectionProblem(err); p != nil {
		return *p
	}
	if isCobraUsage(err) {
		return problem{what: err.Error(), todo: "see --help"}
	}
	return problem{what: strip(err.Error())}
}

// printError prints err once, with one "migrate:" prefix, what to do, and
// the whole internal chain only when debug is set.
// Error texts can carry what a server said: they go through termsafe, so
// control characters are shown escaped, never sent to the terminal.
func printError(w io.Writer, err error, debug bool) {
	p := describe(err)
	fmt.Fprintf(w, "migrate: %s\n", termsafe.String(p.what))
	if p.todo != "" {
		fmt.Fprintf(w, "  what to do: %s\n", p.todo)
	}
	if debug {
		fmt.Fprintf(w, "  detail: %s\n", termsafe.Error(err))
	} else if p.what != strip(err.Error()) {
		fmt.Fprintf(w, "  (--log-level debug shows the details)\n")
	}
}

// packagePrefixes are the names our packages put in front of their errors;
// they tell a developer where an error came from and an operator nothing.
var packagePrefixes = []string{"migrate", "imapcopy", "caldav", "carddav", "dav", "state", "carbonio", "secret"}

// strip removes our packages' name prefixes from every segment of an error
// chain: "caldav: dav: source calendars: dav: PROPFIND ..." becomes
// "source calendars: PROPFIND ...".
func strip(s string) string {
	parts := strings.Split(s, ": ")
	out := parts[:0]
	for _, p := range parts {
		drop := false
		for _, pre := range packagePrefixes {
			if p == pre {
				drop = true
				break
			}
		}
		if !drop {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		// Nothing but prefixes ("migrate: migrate"): say the last once.
		return parts[len(parts)-1]
	}
	return strings.Join(out, ": ")
}

// rootCause is the innermost message of err's chain.
func rootCause(err error) string {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err.Error()
		}
		err = u
	}
}

// isCobraUsage recognises cobra's own argument errors, which it returns as
// plain errors.
func isCobraUsage(err error) bool {
	s := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "accepts ", "requires at least", "requires at most", "required flag", "invalid argument", "flag needs an argument"} {
		if strings.HasPrefix(s, p) || strings.Contains(s, "required flag(s)") {
			return true
		}
	}
	return false
}

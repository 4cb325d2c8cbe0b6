// Package retry classifies errors as transient, permanent or fatal and
// retries transient ones with capped, jittered exponential backoff. It is the
// one place where zxmigrate decides what is worth trying again.
package retry

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"syscall"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/zxmigrate/zxmigrate/internal/obs"
	"github.com/zxmigrate/zxmigrate/zxerrors"
)

// Class is what to do after an error.
type Class int

const (
	// Permanent errors concern one item: record it, skip it, go on.
	Permanent Class = iota
	// Transient errors may go away: reconnect, back off, try again.
	Transient
	// Fatal errors doom the whole job: authentication refused, cancelled
	// context. Stop and report.
	Fatal
)

func (c Class) String() string {
	switch c {
	case Transient:
		return "transient"
	case Fatal:
		return "fatal"
	default:
		return "permanent"
	}
}

// StatusCoder is satisfied by HTTP errors that carry a status code.
type StatusCoder interface {
	// StatusCode is the HTTP status of the answer.
	StatusCode() int
}

// Classifier lets an error decide its own class.
type Classifier interface {
	// RetryClass is the class Classify gives the error.
	RetryClass() Class
}

// ErrAuth is zxerrors.ErrAuth, the public mark of authentication
// failures; errors wrapping it are Fatal.
var ErrAuth = zxerrors.ErrAuth

// Classify returns the class of err. nil is Permanent (there is nothing to retry).
func Classify(err error) Class {
	if err == nil {
		return Permanent
	}
	var c Classifier
	if errors.As(err, &c) {
		return c.RetryClass()
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, ErrAuth) {
		return Fatal
	}
	if errors.Is(err, zxerrors.ErrTLS) || zxerrors.IsTLS(err) {
		return Permanent // a certificate or handshake failure does not heal by itself
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return Transient
	}
	var ie *imap.Error
	if errors.As(err, &ie) {
		switch ie.Code {
		case imap.ResponseCodeAuthenticationFailed, imap.ResponseCodeAuthorizationFailed:
			return Fatal
		case imap.ResponseCodeUnavailable, imap.ResponseCodeLimit, imap.ResponseCodeInUse,
			imap.ResponseCodeServerBug:
			return Transient
		}
		if ie.Type == imap.StatusResponseTypeBye {
			return Transient
		}
		return Permanent
	}
	var sc StatusCoder
	if errors.As(err, &sc) {
		switch code := sc.StatusCode(); {
		case code == http.StatusUnauthorized:
			return Fatal
		case code == http.StatusTooManyRequests, code == http.StatusRequestTimeout,
			code == http.StatusBadGateway, code == http.StatusServiceUnavailable,
			code == http.StatusGatewayTimeout, code == http.StatusInternalServerError:
			return Transient
		default:
			return Permanent
		}
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNABORTED) {
		return Transient
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return Transient
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return Transient
	}
	return Permanent
}

// DefaultAttempts is the number of tries of a zero Policy.
const DefaultAttempts = 6

// Policy bounds retries. The zero value means DefaultPolicy.
type Policy struct {
	// Attempts is the total number of tries; 0 means DefaultAttempts.
	Attempts int
	// Base is the first backoff; 0 means 200ms.
	Base time.Duration
	// Max caps one backoff; 0 means 15s.
	Max time.Duration
}

func (p Policy) norm() Policy {
	if p.Attempts <= 0 {
		p.Attempts = DefaultAttempts
	}
	if p.Base <= 0 {
		p.Base = 200 * time.Millisecond
	}
	if p.Max <= 0 {
		p.Max = 15 * time.Second
	}
	return p
}

// Backoff returns the wait before try number attempt (1-based), with full jitter
// over the upper half of the exponential window.
func (p Policy) Backoff(attempt int) time.Duration {
	p = p.norm()
	d := p.Base << min(attempt-1, 20)
	if d > p.Max || d <= 0 {
		d = p.Max
	}
	return d/2 + rand.N(d/2+1)
}

// Do calls fn until it succeeds, returns a non-transient error, the attempts
// run out or ctx ends. It returns fn's last error. onRetry, when not nil, is
// called before each wait. Each retry of an error that names its server
// (a *dav.HTTPError, a dial or IMAP command error, an HTTP transport
// error) is reported to the observer of server operations ctx carries.
func Do(ctx context.Context, p Policy, fn func(attempt int) error, onRetry func(attempt int, err error, wait time.Duration)) error {
	p = p.norm()
	var err error
	for attempt := 1; ; attempt++ {
		if err = fn(attempt); err == nil || Classify(err) != Transient || attempt >= p.Attempts {
			return err
		}
		wait := p.Backoff(attempt)
		if server := obs.ServerOf(err); server != "" {
			obs.From(ctx).Retry(server, obs.Reason(err))
		}
		if onRetry != nil {
			onRetry(attempt, err, wait)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return errors.Join(err, ctx.Err())
		case <-t.C:
		}
	}
}

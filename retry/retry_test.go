package retry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

type httpErr int

func (h httpErr) Error() string   { return fmt.Sprintf("http %d", int(h)) }
func (h httpErr) StatusCode() int { return int(h) }

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want Class
	}{
		{io.EOF, Transient},
		{fmt.Errorf("read: %w", syscall.ECONNRESET), Transient},
		{&imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnavailable}, Transient},
		{&imap.Error{Type: imap.StatusResponseTypeBye, Text: "service busy"}, Transient},
		{&imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAuthenticationFailed}, Fatal},
		{&imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeTooBig}, Permanent},
		{fmt.Errorf("put: %w", httpErr(503)), Transient},
		{httpErr(412), Permanent},
		{httpErr(401), Fatal},
		{fmt.Errorf("login: %w", ErrAuth), Fatal},
		{context.Canceled, Fatal},
		{errors.New("bad message"), Permanent},
	} {
		if got := Classify(tc.err); got != tc.want {
			t.Errorf("Classify(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestDoRetriesTransientOnly(t *testing.T) {
	p := Policy{Attempts: 4, Base: time.Millisecond, Max: 2 * time.Millisecond}
	n := 0
	err := Do(context.Background(), p, func(int) error { n++; return io.EOF }, nil)
	if !errors.Is(err, io.EOF) || n != 4 {
		t.Errorf("transient: err=%v tries=%d, want EOF after 4", err, n)
	}
	n = 0
	err = Do(context.Background(), p, func(int) error { n++; return errors.New("permanent") }, nil)
	if err == nil || n != 1 {
		t.Errorf("permanent: err=%v tries=%d, want 1 try", err, n)
	}
	n = 0
	err = Do(context.Background(), p, func(a int) error {
		n++
		if a < 3 {
			return io.ErrUnexpectedEOF
		}
		return nil
	}, nil)
	if err != nil || n != 3 {
		t.Errorf("recovering: err=%v tries=%d, want success on 3rd", err, n)
	}
}

func TestBackoffBounded(t *testing.T) {
	p := Policy{Base: 100 * time.Millisecond, Max: time.Second}
	for a := 1; a < 40; a++ {
		if d := p.Backoff(a); d <= 0 || d > time.Second {
			t.Fatalf("Backoff(%d) = %v, want (0, 1s]", a, d)
		}
	}
}

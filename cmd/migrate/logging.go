package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"

	"github.com/zxmigrate/zxmigrate/migrate"
)

// operatorLogger is the logger of the commands that copy: newLogger's, with
// retries summarised on one line each for the operator (see retryLines).
func operatorLogger(w io.Writer, g globalFlags) (*slog.Logger, error) {
	log, err := newLogger(w, g.logFormat, g.logLevel)
	if err != nil {
		return nil, err
	}
	if g.logFormat == "json" || g.debug() {
		return log, nil // machines and developers get every record as it is
	}
	return slog.New(&retryLines{inner: log.Handler(), w: w, mu: new(sync.Mutex)}), nil
}

// retryLines is a slog.Handler that prints a retry record as one line in
// the operator's words,
//
//	migrate: retrying GetAccountInfoRequest: cannot reach carbonio.example.com: no such host (attempt 3/6)
//
// instead of a raw record with its error chain. Other records go to inner.
type retryLines struct {
	inner slog.Handler
	attrs []slog.Attr
	w     io.Writer
	mu    *sync.Mutex
}

func (h *retryLines) Enabled(ctx context.Context, l slog.Level) bool { return h.inner.Enabled(ctx, l) }

func (h *retryLines) Handle(ctx context.Context, r slog.Record) error {
	if !strings.Contains(r.Message, "retrying") {
		return h.inner.Handle(ctx, r)
	}
	var what, cause string
	attempt := 0
	visit := func(a slog.Attr) bool {
		switch a.Key {
		case "source":
			if a.Value.Kind() == slog.KindBool {
				// imapcopy's listing: which side, not a folder name.
				if what == "" {
					what = map[bool]string{true: "the source", false: "the destination"}[a.Value.Bool()]
				}
				return true
			}
			if what == "" {
				what = a.Value.String()
			}
		case "folder", "request", "collection", "host", "account":
			if what == "" {
				what = a.Value.String()
			}
		case "attempt":
			attempt = int(a.Value.Int64())
		case "err", "error":
			if e, ok := a.Value.Any().(error); ok {
				cause = describe(e).what
			} else {
				cause = strip(a.Value.String())
			}
		}
		return true
	}
	for _, a := range h.attrs {
		visit(a)
	}
	r.Attrs(visit)
	if what == "" {
		what = strings.TrimSuffix(strings.TrimSuffix(strip(r.Message), "; retrying"), "retrying")
	}
	line := "migrate: retrying " + what
	if cause != "" {
		line += ": " + cause
	}
	if attempt > 0 {
		// The record is logged after try number attempt failed.
		line += fmt.Sprintf(" (attempt %d/%d)", attempt+1, migrate.DefaultRetryAttempts)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := fmt.Fprintln(h.w, line)
	return err
}

func (h *retryLines) WithAttrs(as []slog.Attr) slog.Handler {
	return &retryLines{inner: h.inner.WithAttrs(as), attrs: append(append([]slog.Attr(nil), h.attrs...), as...), w: h.w, mu: h.mu}
}

func (h *retryLines) WithGroup(name string) slog.Handler {
	return &retryLines{inner: h.inner.WithGroup(name), attrs: h.attrs, w: h.w, mu: h.mu}
}

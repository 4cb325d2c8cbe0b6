package carbonio_test

import (
	"context"
	"errors"
	"io"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/zxmigrate/zxmigrate/carbonio"
	"github.com/zxmigrate/zxmigrate/carbonio/carboniotest"
	"github.com/zxmigrate/zxmigrate/secret"
)

// TestWaitBackoff checks the polling schedule of Wait on a fake clock:
// waits grow by half from PollInterval up to PollMax.
func TestWaitBackoff(t *testing.T) {
	srv := carboniotest.New(carboniotest.Options{OperationSteps: 6})
	defer srv.Close()
	synctest.Test(t, func(t *testing.T) {
		c := &carbonio.Client{Transport: &carbonio.CLI{Runner: srv.CLIRunner()}, PollInterval: time.Second, PollMax: 4 * time.Second}
		ctx := context.Background()
		op, err := c.SmartScan(ctx, carbonio.SmartScanOptions{})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		var progress []string
		final, err := c.Wait(ctx, op, func(o carbonio.Operation) { progress = append(progress, o.State+"/"+o.Type) })
		if err != nil || final.Outcome != carbonio.OutcomeSucceeded {
			t.Fatalf("Wait = %+v, %v", final, err)
		}
		// Polls at 0, 1, 2.5, 4.75, 8.125, 12.125, 16.125 s: the seventh
		// finds the operation gone and reads the log.
		if got, want := time.Since(start), 16125*time.Millisecond; got != want {
			t.Errorf("Wait took %v of fake time, want %v", got, want)
		}
		if want := []string{"Started/Started", "Finished/Finished"}; !slices.Equal(progress, want) {
			t.Errorf("progress events = %v, want %v", progress, want)
		}

		// A cancelled context ends the wait between polls.
		op, err = c.SmartScan(ctx, carbonio.SmartScanOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		last, err := c.Wait(cctx, op, nil)
		if !errors.Is(err, context.DeadlineExceeded) || last.State != carbonio.StateStarted {
			t.Errorf("Wait with a deadline = %+v, %v", last, err)
		}
	})
}

// clock is a settable time source for the fake server.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// TestTokenLifetime lets the admin token outlive its lifetime on the
// server's clock: the client authenticates again transparently.
func TestTokenLifetime(t *testing.T) {
	clk := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	srv := carboniotest.New(carboniotest.Options{Password: sentinelPass, TokenLifetime: time.Hour, Now: clk.Now})
	defer srv.Close()
	c := &carbonio.Client{URL: srv.URL, Admin: "admin@carbonio.local", Password: secret.New(sentinelPass), HTTPClient: srv.Client()}
	ctx := context.Background()
	if _, err := c.Domains(ctx); err != nil {
		t.Fatal(err)
	}
	clk.Add(59 * time.Minute)
	if _, err := c.Domains(ctx); err != nil || srv.AuthCount() != 1 {
		t.Fatalf("within the lifetime: %v, %d logins", err, srv.AuthCount())
	}
	clk.Add(2 * time.Minute)
	if _, err := c.Volumes(ctx); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	if n := srv.AuthCount(); n != 2 {
		t.Errorf("logins = %d, want 2", n)
	}
	expired := 0
	for _, r := range srv.Requests() {
		if r == "GetAllVolumesRequest" {
			expired++
		}
	}
	if expired != 2 {
		t.Errorf("GetAllVolumesRequest sent %d times, want 2 (refused, then retried)", expired)
	}
}

// flakyRunner fails getAllOperations calls number from..to (1-based) with a
// dropped connection.
type flakyRunner struct {
	inner    carbonio.Runner
	from, to int
	mu       sync.Mutex
	n        int
}

func (r *flakyRunner) Run(ctx context.Context, argv []string) ([]byte, error) {
	for _, a := range argv {
		if a == "getAllOperations" {
			r.mu.Lock()
			r.n++
			n := r.n
			r.mu.Unlock()
			if n >= r.from && n <= r.to {
				return nil, io.ErrUnexpectedEOF
			}
		}
	}
	return r.inner.Run(ctx, argv)
}

func TestWaitSurvivesTransientPollFailures(t *testing.T) {
	for _, tc := range []struct {
		name     string
		from, to int
		wantErr  bool
	}{
		{"two dropped polls", 2, 3, false},
		{"connection gone for good", 2, 1000, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := carboniotest.New(carboniotest.Options{})
			defer srv.Close()
			c := &carbonio.Client{Transport: &carbonio.CLI{Runner: &flakyRunner{inner: srv.CLIRunner(), from: tc.from, to: tc.to}},
				PollInterval: time.Millisecond, PollMax: time.Millisecond}
			ctx := context.Background()
			op, err := c.SmartScan(ctx, carbonio.SmartScanOptions{})
			if err != nil {
				t.Fatal(err)
			}
			final, err := c.Wait(ctx, op, nil)
			if tc.wantErr {
				if !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("Wait = %v, want the connection error after a few tries", err)
				}
				return
			}
			if err != nil || final.Outcome != carbonio.OutcomeSucceeded {
				t.Fatalf("Wait = %+v, %v", final, err)
			}
		})
	}
}

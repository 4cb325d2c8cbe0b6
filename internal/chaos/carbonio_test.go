package chaos

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zxmigrate/zxmigrate/carbonio"
	"github.com/zxmigrate/zxmigrate/carbonio/carboniotest"
	"github.com/zxmigrate/zxmigrate/internal/faultproxy"
	"github.com/zxmigrate/zxmigrate/retry"
	"github.com/zxmigrate/zxmigrate/secret"
)

// fastRetry keeps the tests quick: many attempts, tiny waits.
var fastRetry = retry.Policy{Attempts: 12, Base: time.Millisecond, Max: 50 * time.Millisecond}

func carbonioClient(url string, hc *http.Client) *carbonio.Client {
	return &carbonio.Client{
		URL: url, Admin: "admin@carbonio.local", Password: secret.New("admin-password"),
		HTTPClient: hc, Retry: fastRetry, PollInterval: time.Millisecond, PollMax: 5 * time.Millisecond,
		UnverifiedSOAP: true, // the fake accepts the guessed SOAP fields of the do* commands
	}
}

// TestCarbonioWaitThroughDroppedConnections starts operations cleanly, then
// watches them through a TCP proxy that resets connections at random offsets
// and drops every open connection now and then. Wait must reconnect and
// return the operation's true final state; nothing is started twice.
func TestCarbonioWaitThroughDroppedConnections(t *testing.T) {
	ops := size(10, 40)
	srv := carboniotest.New(carboniotest.Options{OperationSteps: 10})
	defer srv.Close()
	target := strings.TrimPrefix(srv.URL, "https://")
	p, err := faultproxy.Listen(target, faultproxy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	// One connection per request, so that every poll draws its own fate
	// from the seeded schedule.
	hc := srv.Client()
	hc.Transport.(*http.Transport).DisableKeepAlives = true
	c := carbonioClient("https://"+p.Addr(), hc)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	srv.FailOperations("doDeduplicate", "volume is read-only")
	var finished, failed int
	for i := range ops {
		p.SetSchedule(nil)
		var op carbonio.Operation
		var want string
		if i%4 == 3 {
			op, err = c.Deduplicate(ctx, "message1", false)
			want = "failed"
		} else {
			op, err = c.SmartScan(ctx, carbonio.SmartScanOptions{})
			want = "succeeded"
		}
		if err != nil {
			t.Fatalf("op %d: start without faults: %v", i, err)
		}
		// Now break things while the operation is watched.
		p.SetSchedule(faultproxy.Random{Seed: uint64(i), Rate: 0.35, MaxOffset: 3000})
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(50 * time.Millisecond):
					p.DropAll()
				}
			}
		})
		got, err := c.Wait(ctx, op, nil)
		close(stop)
		wg.Wait()
		switch want {
		case "succeeded":
			if err != nil || got.Outcome != carbonio.OutcomeSucceeded {
				t.Fatalf("op %d (%s): Wait = %q, %v; want succeeded", i, op.ID, got.Outcome, err)
			}
			finished++
		default:
			var oe *carbonio.OperationError
			if !errors.As(err, &oe) || oe.Operation.Outcome != carbonio.OutcomeFailed {
				t.Fatalf("op %d (%s): Wait = %q, %v; want an OperationError with the failed outcome", i, op.ID, got.Outcome, err)
			}
			failed++
		}
	}
	if n := len(srv.StartedOperations()); n != ops {
		t.Errorf("server started %d operations, want %d (none twice)", n, ops)
	}
	st := p.Stats()
	t.Logf("carbonio: %d operations watched (%d finished, %d failed as the server said); faults injected %d (%v); all survived",
		ops, finished, failed, st.Faults(), st)
	if st.Faults() < int64(ops) {
		t.Errorf("only %d faults injected for %d operations", st.Faults(), ops)
	}
}

// TestCarbonioThroughHTTPFaults puts 503s and resets in front of the admin
// API (HTTP level, TLS terminated by the fault handler). Reads and polls are
// retried; a start whose answer is lost returns an error that names the
// request, never a silent success.
func TestCarbonioThroughHTTPFaults(t *testing.T) {
	srv := carboniotest.New(carboniotest.Options{OperationSteps: 4})
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	rp := faultproxy.NewReverseProxy(u)
	rp.Transport = srv.Client().Transport
	h := &faultproxy.HTTP{Next: rp, Seed: 11, Unavailable: 0.2, ResetBefore: 0.1, ResetAfter: 0.1}
	front := httptest.NewTLSServer(h)
	defer front.Close()
	c := carbonioClient(front.URL, front.Client())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	rounds := size(10, 40)
	var startErrs, finished int
	for i := range rounds {
		h.SetEnabled(false)
		op, err := c.SmartScan(ctx, carbonio.SmartScanOptions{})
		if err != nil {
			t.Fatalf("round %d: start without faults: %v", i, err)
		}
		h.SetEnabled(true)
		got, err := c.Wait(ctx, op, nil)
		if err != nil || got.Outcome != carbonio.OutcomeSucceeded {
			t.Fatalf("round %d: Wait through HTTP faults = %q, %v; want succeeded", i, got.Outcome, err)
		}
		finished++
		if _, err := c.Domains(ctx); err != nil {
			t.Fatalf("round %d: Domains through HTTP faults: %v", i, err)
		}
	}
	// A non-idempotent start under faults: either it succeeds, or the error
	// says which request failed.
	for range rounds {
		if _, err := c.SmartScan(ctx, carbonio.SmartScanOptions{}); err != nil {
			startErrs++
			if !strings.Contains(err.Error(), "zextras") && !strings.Contains(err.Error(), "doSmartScan") {
				t.Errorf("start error does not name the request: %v", err)
			}
		}
	}
	st := h.Stats()
	t.Logf("carbonio over HTTP faults: %d waits finished, %d starts under faults failed visibly; %v", finished, startErrs, st)
	if st.Faults() == 0 {
		t.Error("no HTTP fault injected")
	}
}

package state

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Keep renews lease l every ttl/3 until stop is called, and returns a
// context derived from ctx for the work under the lease. That context is
// cancelled with cause ErrLeaseLost (see context.Cause) when a renewal
// finds the lease lost, or when renewals have failed (the store cannot be
// reached) until the lease may have run out, measured on the local clock
// from the last renewal that succeeded. Work under the lease must stop
// then: another runner may hold it, and its fenced writes are refused.
//
// stop ends the renewals and cancels the returned context; call it before
// Release or FinishGlobal.
func Keep(ctx context.Context, c Coordinator, l Lease, ttl time.Duration) (context.Context, func()) {
	work, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		every := ttl / 3
		// The lease was granted at most a round trip before now: count
		// its time from the call to Keep, a lower bound on its expiry.
		deadline := time.Now().Add(ttl)
		t := time.NewTimer(every)
		defer t.Stop()
		for {
			select {
			case <-work.Done():
				return
			case <-t.C:
			}
			rctx, rcancel := context.WithTimeout(work, every)
			sent := time.Now()
			_, err := c.Renew(rctx, l, ttl)
			rcancel()
			switch {
			case err == nil:
				deadline = sent.Add(ttl)
			case errors.Is(err, ErrLeaseLost):
				cancel(err)
				return
			case work.Err() != nil:
				return
			case time.Now().After(deadline):
				cancel(fmt.Errorf("%w: %s %s not renewed within %v: %v", ErrLeaseLost, l.Kind, l.Key, ttl, err))
				return
			}
			next := every
			if err != nil {
				next = every / 4 // retry sooner while the store is unreachable
			}
			t.Reset(next)
		}
	}()
	return work, func() {
		cancel(context.Canceled)
		<-done
	}
}

package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
)

// Interrupts: a command that can stop softly (migrate run) registers with
// watchStop. The first Ctrl-C then asks it to finish the phases in flight
// and save its state; without such a command the first Ctrl-C cancels at
// once, as before. The next Ctrl-C cancels; the one after exits.
var (
	stopMu       sync.Mutex
	stopRequests = make(chan struct{})
	stopClosed   bool
	softStoppers int
)

// requestStop marks the first interrupt and reports whether a command
// will stop softly.
func requestStop() bool {
	stopMu.Lock()
	defer stopMu.Unlock()
	if softStoppers == 0 {
		return false
	}
	if !stopClosed {
		close(stopRequests)
		stopClosed = true
	}
	return true
}

// handleSignals implements the interrupt contract (see above).
func handleSignals(sigs <-chan os.Signal, cancel context.CancelFunc, stderr io.Writer) {
	n := 0
	for range sigs {
		n++
		if n == 1 {
			if requestStop() {
				fmt.Fprintln(stderr, "\nmigrate: interrupted: finishing the phases in flight and saving state; press Ctrl-C again to stop at once")
				continue
			}
			n++
		}
		if n == 2 {
			fmt.Fprintln(stderr, "\nmigrate: stopping now; state is saved, run the same command again to resume (Ctrl-C again to abort)")
			cancel()
			continue
		}
		os.Exit(exitInterrupted)
	}
}

// watchStop calls stop on the first interrupt, until the returned function
// is called.
func watchStop(stop func()) (done func()) {
	stopMu.Lock()
	softStoppers++
	requests := stopRequests
	stopMu.Unlock()
	ch := make(chan struct{})
	go func() {
		select {
		case <-requests:
			stop()
		case <-ch:
		}
	}()
	return func() {
		stopMu.Lock()
		softStoppers--
		stopMu.Unlock()
		close(ch)
	}
}

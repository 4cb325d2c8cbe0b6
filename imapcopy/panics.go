package imapcopy

import (
	"errors"
	"fmt"
	"runtime/debug"
)

// PanicError is a panic in one of a Copier's workers (a folder pass, its
// reader or writers), recovered: it fails that folder alone, the others go
// on, and the stack is logged. It is not retried.
type PanicError struct {
	Value any    // what the worker panicked with
	Stack []byte // the worker's stack at the panic
}

// Error implements error.
func (e *PanicError) Error() string {
	return fmt.Sprintf("imapcopy: internal error: panic: %v", e.Value)
}

// recoverTo turns a panic of the calling goroutine into a *PanicError in
// *errp. Use it deferred, first thing in every goroutine the copier starts.
func recoverTo(errp *error) {
	if v := recover(); v != nil {
		*errp = &PanicError{Value: v, Stack: debug.Stack()}
	}
}

func isPanic(err error) bool {
	var pe *PanicError
	return errors.As(err, &pe)
}

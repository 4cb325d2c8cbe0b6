package migrate

import (
	"fmt"
	"runtime/debug"
)

// noPanic runs f and turns a panic in it into an error naming what was
// running, so that one account's crash fails that account's phase, the
// other accounts go on and the report is written. The stack goes to log.
func (r *Runner) noPanic(what string, f func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			r.log().Error("panic", "in", what, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			err = fmt.Errorf("migrate: internal error in %s: panic: %v", what, v)
		}
	}()
	return f()
}

//go:build !unix

package migrate

// lockState is a no-op where flock is not available.
func lockState(string) (func(), error) { return func() {}, nil }

// StateInUse reports whether a live process holds the state's lock; where
// flock is not available it cannot tell and reports false.
func StateInUse(string) bool { return false }

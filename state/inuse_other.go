//go:build !unix

package state

// InUse reports whether a live process holds the state's lock; where flock
// is not available no lock is taken, and it reports false.
func InUse(string) bool { return false }

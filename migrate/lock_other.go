//go:build !unix

package migrate

// lockState is a no-op where flock is not available.
func lockState(string) (func(), error) { return func() {}, nil }

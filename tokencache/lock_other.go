//go:build !unix

package tokencache

import "context"

// lockFile is a no-op where flock is missing: brokers of one user then
// rely on the atomic rename alone (last writer wins).
func lockFile(context.Context, string) (func(), error) { return func() {}, nil }

//go:build !linux

package loopback

import (
	"errors"
	"fmt"
	"net"
	"runtime"
)

// PeerUIDSupported reports whether PeerUID can find a peer's uid on this
// system. It is false here: only Linux exposes socket owners.
const PeerUIDSupported = false

// PeerUID would return the uid owning the peer's socket; on this system
// it always fails with an error wrapping errors.ErrUnsupported.
func PeerUID(c net.Conn) (uid uint32, err error) {
	return 0, fmt.Errorf("peer uid lookup on %s: %w", runtime.GOOS, errors.ErrUnsupported)
}

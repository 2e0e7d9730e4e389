package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

// Peer is the process at the other end of an admin connection.
type Peer struct {
	PID int32
	UID uint32
	GID uint32
}

// peerCred reads the credentials the kernel recorded for a unix socket's
// peer when it connected; they cannot be forged by the peer.
func peerCred(c net.Conn) (Peer, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return Peer{}, fmt.Errorf("peer credentials: %T is not a unix connection", c)
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return Peer{}, err
	}
	var cred *unix.Ucred
	var credErr error
	err = raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	})
	if err == nil {
		err = credErr
	}
	if err != nil {
		return Peer{}, fmt.Errorf("peer credentials: %w", err)
	}
	return Peer{PID: cred.Pid, UID: cred.Uid, GID: cred.Gid}, nil
}

type peerKey struct{}

func withPeer(ctx context.Context, p Peer) context.Context {
	return context.WithValue(ctx, peerKey{}, p)
}

func peerFrom(ctx context.Context) (Peer, error) {
	p, ok := ctx.Value(peerKey{}).(Peer)
	if !ok {
		return Peer{}, errors.New("no peer credentials")
	}
	return p, nil
}

// peerListener accepts only connections whose peer runs as uid; others
// are closed before a byte is read.
type peerListener struct {
	net.Listener
	uid    uint32
	refuse func(Peer, error)
}

func (l *peerListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		p, err := peerCred(c)
		if err == nil && p.UID == l.uid {
			return c, nil
		}
		l.refuse(p, err)
		c.Close()
	}
}

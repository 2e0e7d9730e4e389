package loopback

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"syscall"
)

// IPv4 and IPv6 are the loopback addresses front-ends bind.
const (
	IPv4 = "127.0.0.1"
	IPv6 = "::1"
)

// listenFunc opens one listener; Listen takes it as a parameter so tests
// can make the IPv6 side report a taken port without racing other
// processes for a real one.
type listenFunc func(network, address string) (net.Listener, error)

// Listen opens a TCP listener on 127.0.0.1:port (port 0 picks a free one)
// and, when dual is set, a second one on [::1] with the same port number.
// A machine without IPv6 loopback gets only the IPv4 listener. The port
// actually bound is returned.
//
// Accepted connections have TCP keep-alive off. Go turns it on for every
// accepted connection by default, at four setsockopt calls each; on
// loopback it buys nothing (a peer cannot vanish without the kernel
// closing its end, and idle connections are ended by the servers' own
// timeouts), and for devshell, one connection per request, those calls
// were a tenth of the connection's cost.
func Listen(port int, dual bool) ([]net.Listener, int, error) {
	lc := net.ListenConfig{KeepAlive: -1}
	return listen(port, dual, func(network, address string) (net.Listener, error) {
		return lc.Listen(context.Background(), network, address)
	})
}

func listen(port int, dual bool, listenTCP listenFunc) ([]net.Listener, int, error) {
	const attempts = 10 // a free IPv4 port may be taken on ::1; try others
	var lastErr error
	for range attempts {
		v4, err := listenTCP("tcp4", net.JoinHostPort(IPv4, strconv.Itoa(port)))
		if err != nil {
			return nil, 0, fmt.Errorf("listen on %s:%d: %w", IPv4, port, err)
		}
		bound := v4.Addr().(*net.TCPAddr).Port
		if !dual {
			return []net.Listener{v4}, bound, nil
		}
		v6, err := listenTCP("tcp6", net.JoinHostPort(IPv6, strconv.Itoa(bound)))
		switch {
		case err == nil:
			return []net.Listener{v4, v6}, bound, nil
		case errors.Is(err, syscall.EADDRINUSE) && port == 0:
			v4.Close()
			lastErr = err
			continue
		case errors.Is(err, syscall.EADDRINUSE):
			v4.Close()
			return nil, 0, fmt.Errorf("listen on [%s]:%d: %w", IPv6, bound, err)
		default: // no IPv6 loopback on this machine
			return []net.Listener{v4}, bound, nil
		}
	}
	return nil, 0, fmt.Errorf("no port free on both loopback addresses: %w", lastErr)
}

package loopback

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
)

// peerClientEnv switches the test binary into a tiny client that sends
// one request to the address in the variable and prints the answer. The
// other-user tests run it under another uid.
const peerClientEnv = "LOOPBACK_TEST_PEER_CLIENT"

func TestMain(m *testing.M) {
	if addr := os.Getenv(peerClientEnv); addr != "" {
		os.Exit(peerClient(addr, os.Getenv(peerClientEnv+"_REQUEST")))
	}
	os.Exit(m.Run())
}

func peerClient(addr, req string) int {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer c.Close()
	if _, err := io.WriteString(c, req); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// A refused connection may end in a reset rather than an orderly
	// close; either way the answer is what arrived before it.
	if _, err := io.Copy(os.Stdout, c); err != nil && !errors.Is(err, syscall.ECONNRESET) {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

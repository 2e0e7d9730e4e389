// Package otheruser runs a tiny raw client as another uid, for the tests
// of the peer checks (a front-end or socket that answers only its
// owner's processes). The test binary doubles as the client: TestMain
// calls MainIfClient first, Binary copies the binary where any uid can
// run it, and Run starts it as the given uid against an address.
//
// Starting a process as another uid needs root; tests call NeedRoot.
package otheruser

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Nobody is the uid of the unprivileged "nobody" user.
const Nobody = 65534

// clientEnv switches the test binary into the client: it connects to the
// address in the variable ("unix:PATH" or "tcp:HOST:PORT"), sends the
// request in clientEnv_REQUEST and prints the answer.
const clientEnv = "CREDBROKER_TEST_OTHERUSER_CLIENT"

// MainIfClient turns the process into the client and exits when Run
// started it; otherwise it returns at once. Call it first in TestMain.
func MainIfClient() {
	if addr := os.Getenv(clientEnv); addr != "" {
		os.Exit(client(addr, os.Getenv(clientEnv+"_REQUEST")))
	}
}

func client(addr, req string) int {
	network, address, _ := strings.Cut(addr, ":")
	c, err := net.DialTimeout(network, address, 10*time.Second)
	if err != nil {
		fmt.Printf("dial error: %v", err)
		return 0
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	// A refused connection may be closed before the request is written,
	// or end in a reset rather than an orderly close; either way the
	// answer is what arrived before it.
	if _, err := io.WriteString(c, req); err != nil && !refused(err) {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if _, err := io.Copy(os.Stdout, c); err != nil && !refused(err) {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func refused(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// NeedRoot skips the test unless it runs as root.
func NeedRoot(t testing.TB) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root to start a client as another uid")
	}
}

// Binary copies the test binary where any uid can run it.
func Binary(t testing.TB) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "otheruser-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "client")
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return bin
}

// Run runs bin's client as uid against addr ("unix:PATH" or
// "tcp:HOST:PORT"), sending request, and returns what it printed: the
// answer, or "dial error: ..." when it could not connect.
func Run(t testing.TB, bin string, uid uint32, addr, request string) string {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Dir = filepath.Dir(bin)
	cmd.Env = []string{clientEnv + "=" + addr, clientEnv + "_REQUEST=" + request}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("client as uid %d: %v: %s", uid, err, stderr.String())
	}
	return string(out)
}

package daemon

import (
	"io"
	"net"
	"testing"
	"time"
)

func listenTCP(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }

// devshellAnswer sends a devshell request and returns what came back
// before the server closed the connection.
func devshellAnswer(t *testing.T, addr string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "2\n[]")
	out, _ := io.ReadAll(c)
	return string(out)
}

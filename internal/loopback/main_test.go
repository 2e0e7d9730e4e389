package loopback

import (
	"os"
	"testing"

	"credbroker/internal/otheruser"
)

func TestMain(m *testing.M) {
	otheruser.MainIfClient() // the other-user tests run this binary as a client
	os.Exit(m.Run())
}

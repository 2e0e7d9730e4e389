package openid_test

import (
	"testing"

	"credbroker/protocols/openid"
	"credbroker/protocols/openid/openidtest"
)

func TestMemStore(t *testing.T) {
	openidtest.RunStoreTests(t, func(*testing.T) openid.Store { return openid.NewMemStore() })
}

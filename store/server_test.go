package store_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"testing"

	"credbroker/internal/fakeoidc"
	"credbroker/protocols/openid"
)

// startServer starts a production-mode openid server on st and returns
// its base URL.
func startServer(t *testing.T, p *fakeoidc.Server, st openid.Store, keys *openid.Keyring) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	s := &openid.Server{
		OIDC: &openid.OIDC{
			Issuer: p.URL, ClientID: p.ClientID, ClientSecret: p.ClientSecret,
			RedirectURL: fmt.Sprintf("http://127.0.0.1:%d%s", port, openid.PathCallback),
			HTTPClient:  p.Client(),
		},
		Store:  st,
		Keys:   keys,
		Port:   port,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	info, err := s.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return info.URL
}

package openid_test

import (
	"context"
	"fmt"
	"testing"

	"credbroker/broker"
	"credbroker/internal/fakeoidc"
	"credbroker/protocols/openid"
	"credbroker/protocols/openid/openidtest"
)

// TestCleanupForgetsExpiredAccounts checks that a browser session that
// expires leaves nothing in the token core once Cleanup ran: neither on
// the server whose Cleanup removed its record, nor on another server
// sharing the Store that had served it too.
func TestCleanupForgetsExpiredAccounts(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	p := fakeoidc.New(t)
	p.SetClock(c.Now)
	st := openid.NewMemStore()
	keys := mustKeys(t, openid.GenerateKey("k1"))
	newServer := func() (*openid.Server, *broker.Broker, string) {
		t.Helper()
		b := broker.New(broker.Options{Now: c.Now, Logger: quietLogger()})
		t.Cleanup(b.Close)
		s := &openid.Server{
			OIDC:       &openid.OIDC{Issuer: p.URL, ClientID: p.ClientID, ClientSecret: p.ClientSecret, HTTPClient: p.Client()},
			Store:      st,
			Keys:       keys,
			UserTokens: b,
			Now:        c.Now,
			Logger:     quietLogger(),
		}
		s.Port = freePort(t)
		s.OIDC.RedirectURL = fmt.Sprintf("http://127.0.0.1:%d%s", s.Port, openid.PathCallback)
		_, info := start(t, s)
		return s, b, info.URL
	}
	sa, ba, urlA := newServer()
	sb, bb, urlB := newServer()

	br := openidtest.NewBrowser(t)
	if s := br.SignIn(urlA); s.Identity != "user:user@example.com" {
		t.Fatalf("sign-in: %+v", s)
	}
	if s := br.State(urlB); s.Identity != "user:user@example.com" {
		t.Fatalf("the second server: %+v", s)
	}
	for name, b := range map[string]*broker.Broker{"first": ba, "second": bb} {
		if len(b.Accounts()) != 1 || b.Stats().Entries == 0 {
			t.Fatalf("%s server after sign-in: accounts %v, %d cached tokens", name, b.Accounts(), b.Stats().Entries)
		}
	}

	// Nothing has expired yet: Cleanup keeps the live session's account.
	if _, err := sa.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	if len(ba.Accounts()) != 1 {
		t.Errorf("a live session's account went: %v", ba.Accounts())
	}

	c.Advance(openid.DefaultSessionTTL)
	// Each server's background loop also runs Cleanup once at Start; should
	// one run only now, it may take the row first, hence n of 0 allowed.
	if n, err := sa.Cleanup(ctx); err != nil || n > 1 {
		t.Errorf("Cleanup = %d, %v; want the expired session removed", n, err)
	}
	if len(ba.Accounts()) != 0 || ba.Stats().Entries != 0 {
		t.Errorf("after Cleanup: accounts %v, %d cached tokens", ba.Accounts(), ba.Stats().Entries)
	}
	// The second server finds nothing left to delete, and still lets go
	// of the account it held for the session.
	if _, err := sb.Cleanup(ctx); err != nil {
		t.Errorf("second server's Cleanup: %v", err)
	}
	if len(bb.Accounts()) != 0 || bb.Stats().Entries != 0 {
		t.Errorf("second server after Cleanup: accounts %v, %d cached tokens", bb.Accounts(), bb.Stats().Entries)
	}
	if rows := st.All(); len(rows) != 0 {
		t.Errorf("%d rows left in the store", len(rows))
	}
}

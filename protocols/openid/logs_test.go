package openid_test

import (
	"bytes"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"credbroker/internal/fakeoidc"
	"credbroker/protocols/openid"
	"credbroker/protocols/openid/openidtest"
)

// lockedBuffer is a log sink safe for the server's goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestLogsHoldNoSecrets runs sign-in, refresh, revocation and sign-out at
// debug level and looks for every secret in the log.
func TestLogsHoldNoSecrets(t *testing.T) {
	c := newClock()
	p := fakeoidc.New(t)
	p.SetClock(c.Now)
	var logs lockedBuffer
	s := &openid.Server{
		OIDC:   &openid.OIDC{Issuer: p.URL, ClientID: p.ClientID, ClientSecret: p.ClientSecret, HTTPClient: p.Client()},
		Keys:   mustKeys(t, openid.GenerateKey("k1")),
		Now:    c.Now,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	s.Port = freePort(t)
	s.OIDC.RedirectURL = "http://127.0.0.1:" + itoa(s.Port) + openid.PathCallback
	_, info := start(t, s)

	br := openidtest.NewBrowser(t)
	st := br.SignIn(info.URL)
	c.Advance(time.Hour)
	st2 := br.State(info.URL)
	u, _ := url.Parse(info.URL)
	cookies := br.Client.Jar.Cookies(u)
	p.RevokeUser("user@example.com")
	c.Advance(time.Hour)
	br.State(info.URL)
	br.Get(info.URL + openid.PathLogout)

	out := logs.String()
	if !strings.Contains(out, "signed in") {
		t.Fatalf("the log misses the sign-in; got:\n%s", out)
	}
	secrets := []string{p.ClientSecret, st.AccessToken, st.IDToken, st2.AccessToken, st2.IDToken, "fake-refresh-", "fake-access-"}
	for _, ck := range cookies {
		secrets = append(secrets, ck.Value)
	}
	for _, sec := range secrets {
		if sec != "" && strings.Contains(out, sec) {
			t.Errorf("the log holds a secret (%.12s...)", sec)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

package openid_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"credbroker/internal/fakeoidc"
	"credbroker/internal/loopback"
	"credbroker/protocols/openid"
	"credbroker/protocols/openid/openidtest"
)

func TestAddrRefusals(t *testing.T) {
	cert := openidtest.NewCert(t)
	prod := &openid.OIDC{Issuer: "http://127.0.0.1:1", ClientID: "c", ClientSecret: "s", RedirectURL: "https://broker.example" + openid.PathCallback}
	tests := []struct {
		name string
		s    *openid.Server
		want string
	}{
		{"wildcard without TLS, local", &openid.Server{Tokens: fakeTokens{}, Addr: "0.0.0.0:0"}, `Addr "0.0.0.0:0" is not loopback: it needs TLSConfig and production mode (OIDC)`},
		{"all interfaces with TLS, local", &openid.Server{Tokens: fakeTokens{}, Addr: ":0", TLSConfig: cert.ServerConfig()}, `Addr ":0" is not loopback: it needs production mode (OIDC)`},
		{"LAN address, production without TLS", &openid.Server{OIDC: prod, Keys: mustKeys(t, openid.GenerateKey("k1")), Addr: "192.0.2.1:8443"}, `Addr "192.0.2.1:8443" is not loopback: it needs TLSConfig`},
		{"Addr and Port", &openid.Server{Tokens: fakeTokens{}, Addr: "127.0.0.1:0", Port: 8080}, "set Addr or Port, not both"},
		{"bad Addr", &openid.Server{Tokens: fakeTokens{}, Addr: "8443"}, `Addr "8443"`},
		{"TLS without a certificate", &openid.Server{Tokens: fakeTokens{}, TLSConfig: &tls.Config{}}, "TLSConfig has no certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.s.Logger = quietLogger()
			defer tt.s.Close()
			if _, err := tt.s.Start(context.Background()); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Start = %v, want an error with %q", err, tt.want)
			}
		})
	}
}

// TestLocalOverTLS serves local mode over HTTPS on loopback: sign-in
// works and the cookie is Secure with the __Host- prefix.
func TestLocalOverTLS(t *testing.T) {
	cert := openidtest.NewCert(t)
	for _, addr := range []string{"", "127.0.0.1:0"} { // loopback's Port, or Addr
		t.Run("addr="+addr, func(t *testing.T) {
			_, info, _ := startLocal(t, newClock(), func(s *openid.Server) {
				s.Addr, s.TLSConfig = addr, cert.ServerConfig()
			})
			if !strings.HasPrefix(info.URL, "https://127.0.0.1:") || info.URL != fmt.Sprintf("https://127.0.0.1:%d", info.Port) {
				t.Fatalf("URL %q", info.URL)
			}
			br := openidtest.NewBrowser(t)
			cert.Trust(br)
			resp, _ := get(t, noRedirect(br.Client), info.URL+openid.PathLogin+"?r=/")
			ck := cookieNamed(resp, "__Host-credbroker_session")
			if ck == nil || !ck.Secure || !ck.HttpOnly || ck.Path != "/" || ck.Domain != "" {
				t.Fatalf("session cookie %+v in %q", ck, resp.Header["Set-Cookie"])
			}
			if s := br.State(info.URL); s.Identity != "user:dev@example.com" || s.AccessToken == "" {
				t.Errorf("state over TLS: %+v", s)
			}
			// Plain HTTP on the TLS port gets no answer worth the name.
			if resp, err := http.Get("http://" + strings.TrimPrefix(info.URL, "https://") + openid.PathState); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					t.Error("plain HTTP served on the TLS port")
				}
			}
		})
	}
}

// TestProductionOverTLS runs the sign-in against the fake provider with
// the server on HTTPS and an https redirect URL.
func TestProductionOverTLS(t *testing.T) {
	c := newClock()
	p := fakeoidc.New(t)
	p.SetClock(c.Now)
	cert := openidtest.NewCert(t)
	port := freePort(t)
	redirect := fmt.Sprintf("https://127.0.0.1:%d%s", port, openid.PathCallback)
	p.AllowRedirect(redirect)
	s := &openid.Server{
		OIDC:      &openid.OIDC{Issuer: p.URL, ClientID: p.ClientID, ClientSecret: p.ClientSecret, RedirectURL: redirect, HTTPClient: p.Client()},
		Keys:      mustKeys(t, openid.GenerateKey("k1")),
		Addr:      fmt.Sprintf("127.0.0.1:%d", port),
		TLSConfig: cert.ServerConfig(),
		Now:       c.Now,
		Logger:    quietLogger(),
	}
	s, info := start(t, s)
	br := openidtest.NewBrowser(t)
	cert.Trust(br)
	// Every cookie set on the way through the redirects, as sent.
	var set []*http.Cookie
	br.Client.CheckRedirect = func(req *http.Request, _ []*http.Request) error {
		set = append(set, req.Response.Cookies()...)
		return nil
	}
	st := br.SignIn(info.URL)
	if st.Identity != "user:user@example.com" {
		t.Fatalf("state %+v", st)
	}
	var session *http.Cookie
	for _, ck := range set {
		if !ck.Secure || !strings.HasPrefix(ck.Name, "__Host-") {
			t.Errorf("cookie %s set without Secure or the __Host- prefix", ck.Name)
		}
		if ck.Name == "__Host-credbroker_session" && ck.MaxAge > 0 {
			session = ck
		}
	}
	if session == nil {
		t.Fatalf("no session cookie among %v", set)
	}
	req := requestWith(t, info.URL, "")
	req.AddCookie(&http.Cookie{Name: "__Host-credbroker_session", Value: session.Value})
	if email, ok := s.SignedIn(req); !ok || email != "user@example.com" {
		t.Errorf("SignedIn = %q, %v", email, ok)
	}
}

// TestTLSCloseEndsIdleConnections checks Close's promise on the TLS path:
// a keep-alive connection left idle is closed too.
func TestTLSCloseEndsIdleConnections(t *testing.T) {
	cert := openidtest.NewCert(t)
	s, info, _ := startLocal(t, newClock(), func(s *openid.Server) { s.TLSConfig = cert.ServerConfig() })
	conn, err := tls.Dial("tcp", strings.TrimPrefix(info.URL, "https://"), &tls.Config{RootCAs: cert.Pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", openid.PathState, strings.TrimPrefix(info.URL, "https://"))
	rd := bufio.NewReader(conn)
	resp, err := http.ReadResponse(rd, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := rd.ReadByte(); err == nil {
		t.Error("the idle connection is still open after Close")
	}
}

// TestAllowPeer: a refused peer gets loopback's 403 on the plain loopback
// server and a closed connection on the TLS one; an accepted one is
// served.
func TestAllowPeer(t *testing.T) {
	cert := openidtest.NewCert(t)
	refuse := func(net.Conn) bool { return false }
	allow := func(net.Conn) bool { return true }
	for _, useTLS := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", useTLS), func(t *testing.T) {
			start := func(peer func(net.Conn) bool) string {
				_, info, _ := startLocal(t, newClock(), func(s *openid.Server) {
					s.AllowPeer = peer
					if useTLS {
						s.TLSConfig = cert.ServerConfig()
					}
				})
				return info.URL
			}
			br := openidtest.NewBrowser(t)
			cert.Trust(br)
			if st := br.State(start(allow)); st.Identity != openid.Anonymous {
				t.Errorf("allowed peer: %+v", st)
			}
			resp, err := br.Client.Get(start(refuse) + openid.PathState)
			if useTLS {
				if err == nil {
					resp.Body.Close()
					t.Errorf("refused peer served over TLS: %d", resp.StatusCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusForbidden || trim(string(body)) != loopback.PeerRefusedMessage {
				t.Errorf("refused peer: %d %q", resp.StatusCode, body)
			}
		})
	}
}

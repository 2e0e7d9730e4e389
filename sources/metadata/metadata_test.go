package metadata

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"credbroker/broker"
	"credbroker/protocols/gcemeta"
)

const robot = "robot@proj.iam.gserviceaccount.com"

// tokenSource is a small in-test credential whose tokens say what they
// were minted for.
type tokenSource struct{}

func (tokenSource) AccessToken(_ context.Context, scopes []string, _ time.Duration) (broker.Token, error) {
	return broker.Token{Value: "at:" + strings.Join(scopes, ","), Expiry: time.Now().Add(time.Hour)}, nil
}

func (tokenSource) IDToken(_ context.Context, aud string, _ time.Duration) (broker.Token, error) {
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	payload := base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, `{"aud":%q,"exp":%d}`, aud, exp.Unix()))
	return broker.Token{Value: "e30." + payload + ".sig", Expiry: exp}, nil
}
func (tokenSource) Email() string { return robot }

// emulator runs a real gcemeta server over a real broker.
func emulator(t *testing.T) string {
	t.Helper()
	b := broker.New(broker.Options{})
	t.Cleanup(func() { b.Close() })
	b.AddAccount("task", tokenSource{})
	srv := &gcemeta.Server{Tokens: b, Accounts: []gcemeta.Account{{ID: "task", Email: robot, Scopes: []string{"s-default"}}}, DefaultAccount: "task"}
	info, err := srv.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return info.Addr
}

func TestAgainstEmulator(t *testing.T) {
	host := emulator(t)
	ctx := context.Background()
	for _, account := range []string{"", "default", robot} {
		t.Run("account="+account, func(t *testing.T) {
			s, err := New(ctx, Options{Host: host, Account: account})
			if err != nil {
				t.Fatal(err)
			}
			if s.Email() != robot {
				t.Errorf("email %q", s.Email())
			}
			tok, err := s.AccessToken(ctx, []string{"a", "b"}, time.Minute)
			if err != nil || tok.Value != "at:a,b" || tok.Expiry.Before(time.Now().Add(50*time.Minute)) {
				t.Errorf("access token %+v, %v", tok, err)
			}
			if tok, err := s.AccessToken(ctx, nil, time.Minute); err != nil || tok.Value != "at:s-default" {
				t.Errorf("default scopes %+v, %v", tok, err)
			}
			idt, err := s.IDToken(ctx, "https://aud", time.Minute)
			if err != nil || !strings.HasPrefix(idt.Value, "e30.") || idt.Expiry.Before(time.Now().Add(50*time.Minute)) {
				t.Errorf("ID token %+v, %v", idt, err)
			}
			if sc, err := s.Scopes(ctx); err != nil || strings.Join(sc, " ") != "s-default" {
				t.Errorf("scopes %v %v", sc, err)
			}
		})
	}
	t.Setenv(HostEnv, host)
	if s, err := New(ctx, Options{}); err != nil || s.Host() != host {
		t.Errorf("GCE_METADATA_HOST not honoured: %v", err)
	}
	if _, err := New(ctx, Options{Host: host, Account: "nobody@x"}); err == nil || broker.ClassOf(err) != broker.Fatal {
		t.Errorf("unknown account: %v", err)
	}
}

func TestErrors(t *testing.T) {
	var calls atomic.Int32
	var status atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		if r.Header.Get("Metadata-Flavor") != "Google" {
			http.Error(w, "missing flavor", 403)
			return
		}
		w.Header().Set("Metadata-Flavor", "Google")
		if strings.HasSuffix(r.URL.Path, "/email") {
			w.Write([]byte(robot))
			return
		}
		if st := int(status.Load()); st != 0 && (st != 1503 || n%2 == 0) {
			if st == 1503 {
				st = 503
			}
			http.Error(w, "fault", st)
			return
		}
		w.Write([]byte(`{"access_token":"tok","expires_in":3599,"token_type":"Bearer"}`))
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	s, err := New(context.Background(), Options{Host: host})
	if err != nil {
		t.Fatal(err)
	}
	s.backoff = time.Millisecond
	tests := []struct {
		name   string
		status int
		class  broker.Class
	}{
		{"ok", 0, 0},
		{"one 503 retried", 1503, 0},
		{"503 that lasts", 503, broker.Transient},
		{"404", 404, broker.Fatal},
		{"403", 403, broker.Fatal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status.Store(int32(tt.status))
			calls.Store(1)
			_, err := s.AccessToken(context.Background(), []string{"x"}, time.Minute)
			if tt.class == 0 && err != nil || tt.class != 0 && (err == nil || broker.ClassOf(err) != tt.class) {
				t.Errorf("err = %v (class %v), want %v", err, broker.ClassOf(err), tt.class)
			}
		})
	}
	srv.Close()
	if _, err := s.AccessToken(context.Background(), []string{"x"}, time.Minute); !broker.IsTransient(err) {
		t.Errorf("server gone: %v", err)
	}
}

func TestNotAMetadataServer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("hello")) }))
	defer srv.Close()
	_, err := New(context.Background(), Options{Host: strings.TrimPrefix(srv.URL, "http://")})
	if err == nil || !strings.Contains(err.Error(), "Metadata-Flavor") {
		t.Errorf("New = %v", err)
	}
}

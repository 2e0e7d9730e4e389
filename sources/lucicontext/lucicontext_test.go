package lucicontext

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"credbroker/broker"
	"credbroker/lucictx"
	"credbroker/protocols/localauth"
)

// tokenSource is a tiny in-test credential.
type tokenSource struct{ email string }

func (s tokenSource) AccessToken(_ context.Context, scopes []string, _ time.Duration) (broker.Token, error) {
	if len(scopes) > 0 && scopes[0] == "fatal" {
		return broker.Token{}, broker.NewFatalCode(42, errors.New("nope"))
	}
	if len(scopes) > 0 && scopes[0] == "transient" {
		return broker.Token{}, broker.Transientf("later")
	}
	return broker.Token{Value: s.email + ":" + strings.Join(scopes, ","), Expiry: time.Now().Add(time.Hour)}, nil
}

func (s tokenSource) IDToken(_ context.Context, aud string, _ time.Duration) (broker.Token, error) {
	return broker.Token{Value: s.email + ":id:" + aud, Expiry: time.Now().Add(time.Hour)}, nil
}
func (s tokenSource) Email() string { return s.email }

// upstream runs a real local_auth server over a real broker and writes
// a LUCI_CONTEXT for it.
func upstream(t *testing.T, defaultAccount string) []string {
	t.Helper()
	b := broker.New(broker.Options{})
	t.Cleanup(func() { b.Close() })
	b.AddAccount("task", tokenSource{"task@example.com"})
	b.AddAccount("system", tokenSource{"system@example.com"})
	srv := &localauth.Server{Tokens: b, Accounts: []localauth.Account{{ID: "task", Email: "task@example.com"}, {ID: "system", Email: "system@example.com"}}, DefaultAccount: defaultAccount}
	info, err := srv.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	la := info.LocalAuth()
	la.DefaultAccountID = defaultAccount
	path, err := (&lucictx.Context{}).SetLocalAuth(la).Export(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return []string{"LUCI_CONTEXT=" + path}
}

func TestFromEnv(t *testing.T) {
	env := upstream(t, "task")
	ctx := context.Background()
	tests := []struct {
		name, account, scope string
		wantToken, wantErr   string
		wantClass            broker.Class
	}{
		{"default account", "", "s1", "task@example.com:s1", "", 0},
		{"other account", "system", "s1", "system@example.com:s1", "", 0},
		{"fatal upstream keeps the code", "", "fatal", "", "RPC code 42", broker.Fatal},
		{"transient upstream", "", "transient", "", "HTTP 500", broker.Transient},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, up, err := FromEnv(env, tt.account)
			if err != nil {
				t.Fatal(err)
			}
			if up.Port == 0 || len(up.Accounts) != 2 {
				t.Errorf("upstream %+v", up)
			}
			tok, err := src.AccessToken(ctx, []string{tt.scope}, time.Minute)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || broker.ClassOf(err) != tt.wantClass {
					t.Fatalf("err = %v", err)
				}
				if tt.wantClass == broker.Fatal && broker.CodeOf(err) != 42 {
					t.Errorf("code %d", broker.CodeOf(err))
				}
				return
			}
			if err != nil || tok.Value != tt.wantToken {
				t.Fatalf("token %q, %v", tok.Value, err)
			}
		})
	}
	src, _, _ := FromEnv(env, "")
	if idt, err := src.IDToken(ctx, "aud", time.Minute); err != nil || idt.Value != "task@example.com:id:aud" {
		t.Errorf("ID token %q %v", idt.Value, err)
	}
	if src.Email() != "task@example.com" {
		t.Errorf("email %q", src.Email())
	}
}

func TestNotASource(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), 0o600)
		return "LUCI_CONTEXT=" + p
	}
	tests := []struct {
		name      string
		env       []string
		account   string
		noContext bool
	}{
		{"unset", nil, "", true},
		{"no local_auth", []string{write("a.json", `{"realm":{"name":"x"}}`)}, "", true},
		{"no default account", []string{write("b.json", `{"local_auth":{"rpc_port":5,"secret":"Zm9v","accounts":[{"id":"a"}]}}`)}, "", true},
		{"unknown account", []string{write("c.json", `{"local_auth":{"rpc_port":5,"secret":"Zm9v","accounts":[{"id":"a"}],"default_account_id":"a"}}`)}, "b", false},
		{"broken file", []string{write("d.json", `{`)}, "", false},
		{"missing file", []string{"LUCI_CONTEXT=" + filepath.Join(dir, "none.json")}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := FromEnv(tt.env, tt.account)
			if err == nil || errors.Is(err, ErrNoContext) != tt.noContext {
				t.Errorf("err = %v, ErrNoContext %v", err, tt.noContext)
			}
		})
	}
}

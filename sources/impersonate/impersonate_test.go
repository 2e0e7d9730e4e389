package impersonate

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"credbroker/broker"
	"credbroker/internal/fakegoogle"
	"credbroker/sources/serviceaccount"
)

const (
	baseEmail = "base@proj.iam.gserviceaccount.com"
	target    = "target@proj.iam.gserviceaccount.com"
	middle    = "middle@proj.iam.gserviceaccount.com"
)

func setup(t *testing.T) (*fakegoogle.Server, broker.Source) {
	t.Helper()
	fg := fakegoogle.New(t)
	base, err := serviceaccount.FromFile(fg.KeyFile(t, baseEmail), serviceaccount.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return fg, base
}

func minted(t *testing.T, fg *fakegoogle.Server, tok string) fakegoogle.Mint {
	t.Helper()
	for _, m := range fg.Mints() {
		if m.Token == tok {
			return m
		}
	}
	t.Fatal("token not minted by the fake")
	return fakegoogle.Mint{}
}

func TestImpersonate(t *testing.T) {
	fg, base := setup(t)
	fg.AllowImpersonation(baseEmail, target)
	s, err := New(base, target, Options{Endpoint: fg.IAMURL()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tok, err := s.AccessToken(ctx, []string{"scope-a"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if m := minted(t, fg, tok.Value); m.Email != target || m.Actor != baseEmail || m.Scopes[0] != "scope-a" || m.Grant != "impersonation" {
		t.Errorf("minted %+v", m)
	}
	if tok.Expiry.Before(time.Now().Add(50 * time.Minute)) {
		t.Errorf("expiry %v", tok.Expiry)
	}
	idt, err := s.IDToken(ctx, "https://aud", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if m := minted(t, fg, idt.Value); m.Email != target || m.Audience != "https://aud" {
		t.Errorf("minted %+v", m)
	}
	// The base token was minted once and reused.
	n := 0
	for _, m := range fg.Mints() {
		if m.Email == baseEmail {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d base mints, want 1", n)
	}
	if s.Email() != target {
		t.Errorf("email %q", s.Email())
	}
}

func TestDelegates(t *testing.T) {
	fg, base := setup(t)
	fg.AllowImpersonation(baseEmail, middle)
	fg.AllowImpersonation(middle, target)
	direct, _ := New(base, target, Options{Endpoint: fg.IAMURL()})
	if _, err := direct.AccessToken(context.Background(), []string{"s"}, time.Minute); err == nil || !strings.Contains(err.Error(), "PERMISSION_DENIED") {
		t.Errorf("without the chain: %v", err)
	}
	chained, _ := New(base, target, Options{Endpoint: fg.IAMURL(), Delegates: []string{middle}})
	if _, err := chained.AccessToken(context.Background(), []string{"s"}, time.Minute); err != nil {
		t.Errorf("through the delegate: %v", err)
	}
}

type failingBase struct{ err error }

func (f failingBase) AccessToken(context.Context, []string, time.Duration) (broker.Token, error) {
	return broker.Token{}, f.err
}
func (f failingBase) IDToken(context.Context, string, time.Duration) (broker.Token, error) {
	return broker.Token{}, f.err
}
func (failingBase) Email() string { return "" }

func TestErrors(t *testing.T) {
	fg, base := setup(t)
	fg.AllowImpersonation(baseEmail, target)
	tests := []struct {
		name   string
		base   broker.Source
		target string
		fault  fakegoogle.Fault
		class  broker.Class
		text   string
	}{
		{"not allowed", base, "other@proj.iam.gserviceaccount.com", fakegoogle.Fault{}, broker.Fatal, "HTTP 403: PERMISSION_DENIED"},
		{"one 503 retried", base, target, fakegoogle.Fault{Status: 503, Times: 1}, 0, ""},
		{"503 that lasts", base, target, fakegoogle.Fault{Status: 503}, broker.Transient, "HTTP 503"},
		{"base fails transiently", failingBase{broker.Transientf("upstream down")}, target, fakegoogle.Fault{}, broker.Transient, "the base credential: upstream down"},
		{"base fails fatally", failingBase{broker.NewFatalCode(7, errors.New("revoked"))}, target, fakegoogle.Fault{}, broker.Fatal, "revoked"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fg.SetIAMFault(tt.fault)
			defer fg.SetIAMFault(fakegoogle.Fault{})
			s, _ := New(tt.base, tt.target, Options{Endpoint: fg.IAMURL()})
			s.backoff = time.Millisecond
			_, err := s.AccessToken(context.Background(), []string{"s"}, time.Minute)
			if tt.class == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || broker.ClassOf(err) != tt.class || !strings.Contains(err.Error(), tt.text) {
				t.Fatalf("err = %v (class %v)", err, broker.ClassOf(err))
			}
		})
	}
}

package session

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"credbroker/broker"
	"credbroker/internal/fakegoogle"
	"credbroker/sources/serviceaccount"
)

// TestUpstreamErrorsReachLocalAuthClients drives a session's local_auth
// server backed by a real service-account source whose token endpoint
// misbehaves: Google's 4xx must reach the client as a fatal RPC error
// with Google's text, and a persistent 5xx as HTTP 500 (transient).
func TestUpstreamErrorsReachLocalAuthClients(t *testing.T) {
	fg := fakegoogle.New(t)
	src, err := serviceaccount.FromFile(fg.KeyFile(t, "robot@proj.iam.gserviceaccount.com"), serviceaccount.Options{MaxAttempts: 2})
	if err != nil {
		t.Fatal(err)
	}
	b := broker.New(broker.Options{Logger: quietLogger()})
	t.Cleanup(b.Close)
	if err := b.AddAccount("task", src); err != nil {
		t.Fatal(err)
	}
	s, err := Start(context.Background(), Config{
		Broker: b, Scopes: []string{"s"}, Frontends: Frontends{LocalAuth: true},
		TempDir: t.TempDir(), Logger: quietLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })

	tests := []struct {
		name       string
		fault      fakegoogle.Fault
		wantStatus int
		wantBody   string
	}{
		{"google 400 is fatal with its text",
			fakegoogle.Fault{Status: 400, Error: "invalid_grant", Description: "Invalid JWT Signature."},
			200, `"error_code":-1,"error_message":`},
		{"google 500 is transient",
			fakegoogle.Fault{Status: 500},
			500, "Transient error - "},
		{"healthy again",
			fakegoogle.Fault{},
			200, `"access_token":"fake-at-`},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fg.SetFault(tt.fault)
			// A new scope set per case, so each one reaches the upstream.
			status, body := callLocalAuth(t, s, fmt.Sprintf("scope-%d", i))
			if status != tt.wantStatus || !strings.Contains(body, tt.wantBody) {
				t.Errorf("got %d %q, want %d containing %q", status, body, tt.wantStatus, tt.wantBody)
			}
			if tt.fault.Description != "" && !strings.Contains(body, tt.fault.Description) {
				t.Errorf("body %q lacks Google's error text", body)
			}
		})
	}
}

func callLocalAuth(t *testing.T, s *Session, scope string) (int, string) {
	t.Helper()
	la := s.LocalAuth
	req, _ := json.Marshal(map[string]any{"scopes": []string{scope}, "secret": la.Secret, "account_id": la.DefaultAccountID})
	url := fmt.Sprintf("http://127.0.0.1:%d/rpc/LuciLocalAuthService.GetOAuthToken", la.RPCPort)
	resp, err := http.Post(url, "application/json", bytes.NewReader(req))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"testing"
	"time"

	"cloud.google.com/go/compute/metadata"
	"golang.org/x/oauth2/google"
	"google.golang.org/api/idtoken"

	"credbroker/internal/fakegoogle"
)

// goClientMain is a child using Google's Go client libraries the way
// programs on GCE do; it prints what they found as JSON.
func goClientMain() int {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out := map[string]any{"on_gce": metadata.OnGCEWithContext(ctx)}
	fail := func(step string, err error) int {
		fmt.Fprintf(os.Stderr, "%s: %v\n", step, err)
		return 20
	}
	var err error
	if out["project"], err = metadata.ProjectIDWithContext(ctx); err != nil {
		return fail("project", err)
	}
	if out["email"], err = metadata.EmailWithContext(ctx, ""); err != nil {
		return fail("email", err)
	}
	creds, err := google.FindDefaultCredentials(ctx, "https://www.googleapis.com/auth/devstorage.read_only")
	if err != nil {
		return fail("default credentials", err)
	}
	tok, err := creds.TokenSource.Token()
	if err != nil {
		return fail("default token", err)
	}
	out["adc_token"], out["adc_project"] = tok.AccessToken, creds.ProjectID
	ts, err := google.ComputeTokenSource("", "scope-b", "scope-a").Token()
	if err != nil {
		return fail("compute token", err)
	}
	out["compute_token"] = ts.AccessToken
	its, err := idtoken.NewTokenSource(ctx, "https://service.example")
	if err != nil {
		return fail("idtoken source", err)
	}
	id, err := its.Token()
	if err != nil {
		return fail("id token", err)
	}
	out["id_token"] = id.AccessToken
	json.NewEncoder(os.Stdout).Encode(out)
	return 0
}

// TestGoClientsUnderRun checks Google's Go libraries find the metadata
// server and get tokens minted for the key: metadata, ADC,
// ComputeTokenSource with custom scopes, and idtoken.
func TestGoClientsUnderRun(t *testing.T) {
	t.Parallel() // its own broker process, fake Google and directories
	fg := fakegoogle.New(t)
	key := fg.KeyFile(t, testEmail)
	tmp := t.TempDir()
	r := runBroker(t, tmp, clientEnv(t), "run", "--service-account-json", key, "--", "env", roleVar+"=go-client", os.Args[0])
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	var got struct {
		OnGCE        bool   `json:"on_gce"`
		Project      string `json:"project"`
		Email        string `json:"email"`
		ADCToken     string `json:"adc_token"`
		ADCProject   string `json:"adc_project"`
		ComputeToken string `json:"compute_token"`
		IDToken      string `json:"id_token"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("child output %q: %v", r.stdout, err)
	}
	if !got.OnGCE || got.Project != "proj" || got.Email != testEmail || got.ADCProject != "proj" {
		t.Errorf("metadata view: %+v", got)
	}
	if m := mintedFor(t, fg, got.ADCToken); m.Email != testEmail ||
		fmt.Sprint(m.Scopes) != "[https://www.googleapis.com/auth/devstorage.read_only]" {
		t.Errorf("ADC token minted as %+v", m)
	}
	if m := mintedFor(t, fg, got.ComputeToken); fmt.Sprint(m.Scopes) != "[scope-a scope-b]" {
		t.Errorf("ComputeTokenSource token minted with scopes %q, want sorted custom scopes", m.Scopes)
	}
	m := mintedFor(t, fg, got.IDToken)
	claims := jwtClaims(t, got.IDToken)
	if m.Audience != "https://service.example" || claims["aud"] != "https://service.example" || claims["email"] != testEmail {
		t.Errorf("ID token minted as %+v with claims %v", m, claims)
	}
	assertNoSessionFiles(t, tmp)
}

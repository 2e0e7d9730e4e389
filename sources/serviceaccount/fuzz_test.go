package serviceaccount

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

// FuzzParseKey feeds arbitrary key files: parsing must not panic, and
// every refusal must be an ErrBadKey.
func FuzzParseKey(f *testing.F) {
	f.Add([]byte(`{"type":"service_account","client_email":"a@b","private_key":"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}`))
	f.Add([]byte(`{"type":"authorized_user"}`))
	f.Add([]byte(`{"type":"service_account","client_email":"a@b","private_key":"x","token_uri":"http://[::1]:1/t"}`))
	f.Add([]byte(`[`))
	f.Add([]byte(`{"private_key":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := parseKey(data, "fuzz")
		if err != nil {
			if !errors.Is(err, ErrBadKey) {
				t.Fatalf("error %v is not ErrBadKey", err)
			}
			return
		}
		if k.email == "" || k.private == nil || k.tokenURI == "" {
			t.Fatalf("accepted an incomplete key")
		}
	})
}

// FuzzEndpointError feeds arbitrary error bodies and Retry-After values:
// the result is bounded, printable text.
func FuzzEndpointError(f *testing.F) {
	f.Add(400, []byte(`{"error":"invalid_grant","error_description":"Invalid JWT Signature."}`), "")
	f.Add(403, []byte(`{"error":{"status":"PERMISSION_DENIED","message":"no"}}`), "3")
	f.Add(429, []byte(`<html>`), "Wed, 21 Oct 2015 07:28:00 GMT")
	f.Add(500, []byte(`{"error":null}`), "-5")
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, status int, body []byte, retryAfter string) {
		resp := &http.Response{StatusCode: status, Header: http.Header{"Retry-After": {retryAfter}}}
		ee := parseEndpointError("https://t/token", resp, body, now)
		msg := ee.Error()
		if len(ee.description) > 4*maxDescription+3 || len(ee.code) > 4*64+3 {
			t.Fatalf("unbounded text in %q", msg)
		}
		if strings.ContainsAny(msg, "\n\r\x00") {
			t.Fatalf("control characters in %q", msg)
		}
		if ee.retryAfter < 0 {
			t.Fatalf("negative Retry-After %v", ee.retryAfter)
		}
	})
}

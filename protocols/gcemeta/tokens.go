package gcemeta

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"credbroker/broker"
)

// gcloudClientID is the audience gcloud asks an ID token for on every
// credential refresh on GCE. gcloud ignores a 404 for it and nothing
// else, so a failure for this audience is answered 404 (see doc.go).
const gcloudClientID = "32555940559.apps.googleusercontent.com"

// accessToken answers <acct>/token[?scopes=a,b].
func (s *Server) accessToken(r *http.Request, a Account, q request) (any, error) {
	scopes := parseScopes(q.params["scopes"])
	if len(scopes) == 0 {
		scopes = a.Scopes
	}
	start := time.Now()
	tok, err := s.Tokens.AccessToken(r.Context(), a.ID, scopes, MinTokenLifetime)
	if err == nil {
		err = checkLifetime(tok, s.now())
	}
	s.logIssue(r, a, "scopes", strings.Join(scopes, ","), start, err)
	if err != nil {
		return nil, mintError(err)
	}
	secs := int64(tok.Expiry.Sub(s.now()) / time.Second)
	return map[string]any{
		"access_token": tok.Value,
		"expires_in":   json.Number(strconv.FormatInt(secs, 10)),
		"token_type":   "Bearer",
	}, nil
}

// idToken answers <acct>/identity?audience=...[&format=...][&licenses=...].
// format and licenses are accepted and do not change the token: the
// credential's source decides its claims.
func (s *Server) idToken(r *http.Request, a Account, q request) (any, error) {
	aud := q.params["audience"]
	if aud == "" {
		return nil, &httpError{http.StatusBadRequest, "`audience` is required"}
	}
	start := time.Now()
	tok, err := s.Tokens.IDToken(r.Context(), a.ID, aud, MinTokenLifetime)
	if err == nil {
		err = checkLifetime(tok, s.now())
	}
	s.logIssue(r, a, "audience", aud, start, err)
	if err != nil {
		if aud == gcloudClientID {
			return nil, notFound("No ID token for gcloud's client id from this account")
		}
		return nil, mintError(err)
	}
	return tok.Value, nil
}

// checkLifetime refuses a token that would go out with expires_in 0,
// which x/oauth2 takes for an incomplete token; the client retries.
func checkLifetime(tok broker.Token, now time.Time) error {
	if tok.Value == "" {
		return broker.Transientf("token core returned an empty token")
	}
	if tok.Expiry.Sub(now) < time.Second {
		return broker.Transientf("token core returned an expired token")
	}
	return nil
}

// mintError maps a token-core failure to an answer clients act on
// correctly: SDKs retry 5xx (and 429) and give up on other 4xx, so a
// transient failure is 500 and a fatal one a 4xx saying why.
func mintError(err error) error {
	msg := "failed to mint the token: " + oneLine(err.Error())
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded), broker.IsTransient(err):
		return &httpError{http.StatusInternalServerError, msg}
	case errors.Is(err, broker.ErrUnknownAccount):
		return &httpError{http.StatusNotFound, msg}
	case errors.Is(err, broker.ErrNotSupported):
		return &httpError{http.StatusBadRequest, msg}
	default:
		return &httpError{http.StatusForbidden, msg}
	}
}

// oneLine keeps an error message to one short line in a response body.
func oneLine(s string) string {
	const max = 300
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > max {
		s = s[:max] + "..."
	}
	return s
}

func (s *Server) logIssue(r *http.Request, a Account, kind, what string, start time.Time, err error) {
	outcome := "ok"
	if err != nil {
		outcome = broker.ClassOf(err).String() + ": " + oneLine(err.Error())
	}
	s.logger().LogAttrs(r.Context(), levelFor(err), "token request",
		slog.String("frontend", "gcemeta"),
		slog.String("account", a.ID),
		slog.String(kind, what),
		slog.String("peer", r.RemoteAddr),
		slog.String("outcome", outcome),
		slog.Duration("latency", time.Since(start)),
	)
}

func levelFor(err error) slog.Level {
	if err != nil {
		return slog.LevelWarn
	}
	return slog.LevelDebug
}

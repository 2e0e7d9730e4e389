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
	if s.logger().Enabled(r.Context(), levelFor(err)) {
		s.logIssue(r, a, "scopes", strings.Join(scopes, ","), start, err)
	}
	if err != nil {
		return nil, mintError(err)
	}
	secs := int64(tok.Expiry.Sub(s.now()) / time.Second)
	return tokenAnswer{token: tok.Value, expiresIn: secs}, nil
}

// tokenAnswer is the value of the token leaf. As JSON, its usual form,
// it is encoded directly (see tokenJSON); other forms render its map.
type tokenAnswer struct {
	token     string
	expiresIn int64
}

func (t tokenAnswer) asMap() map[string]any {
	return map[string]any{
		"access_token": t.token,
		"expires_in":   json.Number(strconv.FormatInt(t.expiresIn, 10)),
		"token_type":   "Bearer",
	}
}

// tokenBody is a token answer encoded as JSON. Clients ask for the same
// cached token many times a second, and the answer changes only when the
// token does or expires_in ticks, so the latest one is kept.
type tokenBody struct {
	token     string
	expiresIn int64
	body      []byte
}

// tokenJSON returns what toJSON makes of t.asMap(), from the kept answer
// when it is the same.
func (s *Server) tokenJSON(t tokenAnswer) []byte {
	if b := s.lastToken.Load(); b != nil && b.expiresIn == t.expiresIn && b.token == t.token {
		return b.body
	}
	var body []byte
	if plainJSON(t.token) {
		body = make([]byte, 0, len(t.token)+64)
		body = append(body, `{"access_token":"`...)
		body = append(body, t.token...)
		body = append(body, `","expires_in":`...)
		body = strconv.AppendInt(body, t.expiresIn, 10)
		body = append(body, `,"token_type":"Bearer"}`...)
	} else {
		body = toJSON(t.asMap())
	}
	s.lastToken.Store(&tokenBody{token: t.token, expiresIn: t.expiresIn, body: body})
	return body
}

// plainJSON reports whether s encodes as a JSON string unchanged by
// toJSON (no HTML escaping): printable ASCII without the quote and the
// backslash.
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			return false
		}
	}
	return true
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
	if s.logger().Enabled(r.Context(), levelFor(err)) {
		s.logIssue(r, a, "audience", aud, start, err)
	}
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

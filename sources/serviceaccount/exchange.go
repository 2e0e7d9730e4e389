package serviceaccount

import (
	"context"
	"credbroker/internal/jwtclaims"
	"credbroker/internal/safetext"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"credbroker/broker"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

const (
	jwtBearerGrant = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	// assertionLife is exp-iat of an assertion, the most Google accepts.
	assertionLife = time.Hour
	// assertionSkew backdates iat so an endpoint whose clock is a little
	// behind does not see an assertion from the future.
	assertionSkew = 10 * time.Second
	// attemptTimeout bounds one call, so a hung connection leaves time
	// for a retry on a new one when the caller's deadline allows.
	attemptTimeout = 30 * time.Second
	// maxBackoff caps the delay between attempts.
	maxBackoff = 5 * time.Second
	// maxRetryAfter is the longest Retry-After waited for; a longer one
	// ends the attempts so the caller hears about it at once.
	maxRetryAfter = 10 * time.Second
	// maxResponse bounds what is read from the endpoint.
	maxResponse = 1 << 20
	// maxDescription bounds the endpoint's text quoted in errors.
	maxDescription = 300
)

type tokenKind int

const (
	accessToken tokenKind = iota
	idToken
)

// endpointError is an answer from the token endpoint other than a token.
type endpointError struct {
	uri         string
	status      int
	code        string // OAuth "error"
	description string // OAuth "error_description"
	retryAfter  time.Duration
}

func (e *endpointError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "token endpoint %s answered HTTP %d", e.uri, e.status)
	switch {
	case e.code != "" && e.description != "":
		fmt.Fprintf(&b, ": %s: %s", e.code, e.description)
	case e.code != "":
		fmt.Fprintf(&b, ": %s", e.code)
	default:
		b.WriteString(" without an OAuth error")
	}
	if e.retryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %v)", e.retryAfter)
	}
	return b.String()
}

// transientStatus reports whether an HTTP status may go away on retry.
func transientStatus(status int) bool {
	return status >= 500 || status == http.StatusTooManyRequests || status == http.StatusRequestTimeout
}

// fetch runs the exchange, retrying transient failures while attempts and
// the context's deadline allow.
func (s *Source) fetch(ctx context.Context, claims map[string]any, kind tokenKind) (broker.Token, error) {
	for attempt := 1; ; attempt++ {
		tok, err := s.exchange(ctx, claims, kind)
		if err == nil || !broker.IsTransient(err) {
			return tok, err
		}
		if attempt >= s.maxAttempts {
			return broker.Token{}, fmt.Errorf("giving up after %d attempts: %w", attempt, err)
		}
		wait := s.backoff(attempt)
		var ee *endpointError
		if errors.As(err, &ee) && ee.retryAfter > 0 {
			if ee.retryAfter > maxRetryAfter {
				return broker.Token{}, err
			}
			wait = max(wait, ee.retryAfter)
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return broker.Token{}, err
		}
		s.log.Debug("token endpoint failed; retrying", slog.String("account", s.key.email),
			slog.Int("attempt", attempt), slog.Duration("wait", wait), slog.Any("err", err))
		if s.sleep(ctx, wait) != nil {
			return broker.Token{}, err
		}
	}
}

// backoff is the delay before attempt+1: exponential, capped, with the
// upper half jittered so that many brokers do not retry in step.
func (s *Source) backoff(attempt int) time.Duration {
	d := s.backoffBase << min(attempt-1, 20)
	if d <= 0 || d > maxBackoff {
		d = maxBackoff
	}
	return d/2 + rand.N(d/2+1)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// exchange makes one call to the token endpoint.
func (s *Source) exchange(ctx context.Context, claims map[string]any, kind tokenKind) (broker.Token, error) {
	start := s.now()
	assertion, err := s.sign(claims, start)
	if err != nil {
		return broker.Token{}, broker.NewFatal(err)
	}
	ctx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	form := url.Values{"grant_type": {jwtBearerGrant}, "assertion": {assertion}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.key.tokenURI, strings.NewReader(form.Encode()))
	if err != nil {
		return broker.Token{}, broker.Fatalf("token endpoint %s: %w", s.key.tokenURI, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		// Network errors and timeouts, ours or the caller's.
		return broker.Token{}, broker.NewTransient(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return broker.Token{}, broker.Transientf("token endpoint %s: reading the answer: %w", s.key.tokenURI, err)
	}
	if resp.StatusCode != http.StatusOK {
		ee := parseEndpointError(s.key.tokenURI, resp, body, s.now())
		if transientStatus(resp.StatusCode) {
			return broker.Token{}, broker.NewTransient(ee)
		}
		return broker.Token{}, broker.NewFatal(ee)
	}
	return s.parseToken(body, kind, start)
}

// sign makes the assertion for claims at now.
func (s *Source) sign(extra map[string]any, now time.Time) (string, error) {
	opts := (&jose.SignerOptions{}).WithType("JWT")
	signer, err := jose.NewSigner(jose.SigningKey{
		Algorithm: jose.RS256,
		Key:       jose.JSONWebKey{Key: s.key.private, KeyID: s.key.keyID},
	}, opts)
	if err != nil {
		return "", errors.New("preparing to sign the assertion failed")
	}
	iat := now.Add(-assertionSkew)
	tok, err := jwt.Signed(signer).Claims(jwt.Claims{
		Issuer:   s.key.email,
		Audience: jwt.Audience{s.key.tokenURI},
		IssuedAt: jwt.NewNumericDate(iat),
		Expiry:   jwt.NewNumericDate(iat.Add(assertionLife)),
	}).Claims(extra).Serialize()
	if err != nil {
		return "", errors.New("signing the assertion failed")
	}
	return tok, nil
}

// tokenResponse is the endpoint's successful answer.
type tokenResponse struct {
	AccessToken string      `json:"access_token"`
	ExpiresIn   json.Number `json:"expires_in"`
	IDToken     string      `json:"id_token"`
}

// parseToken reads a 200 answer. A malformed one is transient: it is more
// likely a proxy's or a deploy's hiccup than a verdict on the key.
func (s *Source) parseToken(body []byte, kind tokenKind, start time.Time) (broker.Token, error) {
	var tr tokenResponse
	if err := json.Unmarshal(body, &tr); err != nil {
		return broker.Token{}, broker.Transientf("token endpoint %s answered 200 without a JSON token response", s.key.tokenURI)
	}
	switch kind {
	case accessToken:
		if tr.AccessToken == "" {
			return broker.Token{}, broker.Transientf("token endpoint %s answered without an access_token", s.key.tokenURI)
		}
		tok := broker.Token{Value: tr.AccessToken}
		if tr.ExpiresIn != "" {
			secs, err := tr.ExpiresIn.Int64()
			if err != nil || secs <= 0 {
				return broker.Token{}, broker.Transientf("token endpoint %s answered with a bad expires_in", s.key.tokenURI)
			}
			// Counted from before the call, so the expiry is never late.
			tok.Expiry = start.Add(time.Duration(secs) * time.Second)
		}
		return tok, nil
	default:
		if tr.IDToken == "" {
			return broker.Token{}, broker.Transientf("token endpoint %s answered without an id_token", s.key.tokenURI)
		}
		exp, err := jwtclaims.Expiry(tr.IDToken)
		if err != nil {
			return broker.Token{}, broker.Transientf("token endpoint %s answered with an id_token that %v", s.key.tokenURI, err)
		}
		return broker.Token{Value: tr.IDToken, Expiry: exp}, nil
	}
}

// parseEndpointError reads an error answer: Google's OAuth error fields if
// they are there, never the body as such.
func parseEndpointError(uri string, resp *http.Response, body []byte, now time.Time) *endpointError {
	ee := &endpointError{uri: uri, status: resp.StatusCode, retryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), now)}
	var oauth struct {
		Error       json.RawMessage `json:"error"`
		Description string          `json:"error_description"`
	}
	if json.Unmarshal(body, &oauth) != nil {
		return ee
	}
	var code string
	var apiErr struct {
		Status  string `json:"status"`
		Message string `json:"message"`
	}
	switch {
	case json.Unmarshal(oauth.Error, &code) == nil:
		ee.code, ee.description = code, oauth.Description
	case json.Unmarshal(oauth.Error, &apiErr) == nil:
		// Google APIs' error object, for endpoints that answer like an API.
		ee.code, ee.description = apiErr.Status, apiErr.Message
	}
	ee.code = safetext.Line(ee.code, 64)
	ee.description = safetext.Line(ee.description, maxDescription)
	return ee
}

// parseRetryAfter reads Retry-After in seconds or as an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
		return max(time.Duration(secs)*time.Second, 0)
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return 0
}

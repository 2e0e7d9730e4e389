package bench

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Front-end names, as tables and tests show them.
const (
	LocalAuth = "local_auth"
	Metadata  = "metadata"
	Devshell  = "devshell"
	Gsutil    = "gsutil"
)

// Frontends lists the front-end names in the order they are measured.
var Frontends = []string{LocalAuth, Metadata, Devshell, Gsutil}

// DefaultScopes are the scopes asked for when a front-end lets the client
// choose (local_auth, metadata) and none are given: the session default.
var DefaultScopes = []string{
	"https://www.googleapis.com/auth/cloud-platform",
	"https://www.googleapis.com/auth/userinfo.email",
}

// maxAnswer bounds what is read of one answer.
const maxAnswer = 1 << 20

// Outcome is how a front-end answered, in the terms every protocol can
// express: a token, "try again", "give up", or a refusal of the request
// itself (bad Host, browser origin, wrong secret, malformed input).
type Outcome int

const (
	OK Outcome = iota + 1
	Transient
	Fatal
	Refused
)

func (o Outcome) String() string {
	switch o {
	case OK:
		return "ok"
	case Transient:
		return "transient"
	case Fatal:
		return "fatal"
	case Refused:
		return "refused"
	}
	return "Outcome(" + strconv.Itoa(int(o)) + ")"
}

// Answer is a front-end's answer, decoded.
type Answer struct {
	Outcome Outcome
	// Status is the HTTP status; 0 for devshell.
	Status int
	// Token is the access token when Outcome is OK.
	Token string
	// Expiry is when the client will consider the token expired: the
	// absolute expiry for local_auth, plus expires_in for the others
	// counted from when Fetch sent the request (as a careful client
	// does: counted from receipt, a slow answer would stretch it).
	Expiry time.Time
	// Message is the error text the client was given, if any.
	Message string
}

// Target is one front-end's token request, ready to be sent many times.
type Target struct {
	Name string

	// HTTP front-ends.
	method string
	url    string
	header http.Header
	body   []byte
	read   func(status int, body []byte, at time.Time) Answer

	// devshell: a raw TCP exchange.
	addr    string
	request []byte
}

// Targets returns the token request of every front-end ep announces, in
// the order of Frontends. scopes apply where the client chooses them
// (local_auth, metadata's ?scopes=); nil means DefaultScopes for
// local_auth and the server's default for metadata.
func (ep Endpoints) Targets(scopes []string) []Target {
	var out []Target
	if la := ep.LocalAuth; la != nil {
		s := scopes
		if s == nil {
			s = DefaultScopes
		}
		body, _ := json.Marshal(map[string]any{
			"scopes":     s,
			"secret":     base64.StdEncoding.EncodeToString(la.Secret),
			"account_id": la.DefaultAccountID,
		})
		out = append(out, Target{
			Name:   LocalAuth,
			method: http.MethodPost,
			url:    fmt.Sprintf("http://127.0.0.1:%d/rpc/LuciLocalAuthService.GetOAuthToken", la.RPCPort),
			header: http.Header{"Content-Type": {"application/json"}},
			body:   body,
			read:   readLocalAuth,
		})
	}
	if ep.MetadataAddr != "" {
		u := "http://" + ep.MetadataAddr + "/computeMetadata/v1/instance/service-accounts/default/token"
		if scopes != nil {
			u += "?scopes=" + url.QueryEscape(strings.Join(scopes, ","))
		}
		out = append(out, Target{
			Name:   Metadata,
			method: http.MethodGet,
			url:    u,
			header: http.Header{"Metadata-Flavor": {"Google"}},
			read:   readMetadata,
		})
	}
	if ep.DevshellPort != 0 {
		out = append(out, Target{
			Name:    Devshell,
			addr:    net.JoinHostPort("127.0.0.1", strconv.Itoa(ep.DevshellPort)),
			request: []byte("2\n[]"),
		})
	}
	if ep.GsutilTokenURL != "" {
		form := url.Values{
			"grant_type":    {"refresh_token"},
			"refresh_token": {ep.GsutilRefreshToken},
			"client_id":     {"gsutil"},
			"client_secret": {"unused"},
		}
		out = append(out, Target{
			Name:   Gsutil,
			method: http.MethodPost,
			url:    ep.GsutilTokenURL,
			header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}},
			body:   []byte(form.Encode()),
			read:   readGsutil,
		})
	}
	return out
}

// ByName returns the target called name.
func ByName(targets []Target, name string) (Target, bool) {
	for _, t := range targets {
		if t.Name == name {
			return t, true
		}
	}
	return Target{}, false
}

// IsHTTP reports whether the front-end speaks HTTP (all but devshell).
func (t Target) IsHTTP() bool { return t.read != nil }

// Addr is the host:port the target is served on.
func (t Target) Addr() string {
	if !t.IsHTTP() {
		return t.addr
	}
	u, _ := url.Parse(t.url)
	return u.Host
}

// NewRequest builds the HTTP request; tests change it before sending
// (Host, Origin, extra headers). It panics for devshell.
func (t Target) NewRequest(ctx context.Context) *http.Request {
	if !t.IsHTTP() {
		panic("bench: " + t.Name + " is not an HTTP front-end")
	}
	var body io.Reader
	if t.body != nil {
		body = bytes.NewReader(t.body)
	}
	req, err := http.NewRequestWithContext(ctx, t.method, t.url, body)
	if err != nil {
		panic(err) // the URL was built above
	}
	for k, v := range t.header {
		req.Header[k] = v
	}
	return req
}

// Read decodes an HTTP answer to a request from NewRequest, counting
// expires_in from now.
func (t Target) Read(resp *http.Response) (Answer, error) {
	return t.readFrom(resp, time.Now())
}

// readFrom decodes an HTTP answer, counting expires_in from sent.
func (t Target) readFrom(resp *http.Response, sent time.Time) (Answer, error) {
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return Answer{}, err
	}
	return t.read(resp.StatusCode, body, sent), nil
}

// Fetch sends the request once and decodes the answer. The error is for
// transport failures only (refused or reset connections, ctx ending).
func (t Target) Fetch(ctx context.Context, hc *http.Client) (Answer, error) {
	sent := time.Now()
	if !t.IsHTTP() {
		frame, err := t.Exchange(ctx, t.request)
		if err != nil {
			return Answer{}, err
		}
		return readDevshell(frame, sent), nil
	}
	resp, err := hc.Do(t.NewRequest(ctx))
	if err != nil {
		return Answer{}, err
	}
	return t.readFrom(resp, sent)
}

// Exchange sends raw bytes to the devshell port and returns everything
// the server writes before it closes the connection.
func (t Target) Exchange(ctx context.Context, request []byte) ([]byte, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", t.addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := c.Write(request); err != nil {
		return nil, err
	}
	return io.ReadAll(io.LimitReader(c, maxAnswer))
}

// hit sends the request and only checks that a token came back: the cheap
// path the load generator uses.
func (t Target) hit(ctx context.Context, hc *http.Client) error {
	if !t.IsHTTP() {
		frame, err := t.Exchange(ctx, t.request)
		if err != nil {
			return err
		}
		if bytes.Count(frame, []byte(",")) < 3 {
			return fmt.Errorf("devshell: no token in %q", clip(frame))
		}
		return nil
	}
	resp, err := hc.Do(t.NewRequest(ctx))
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: HTTP %d", t.Name, resp.StatusCode)
	}
	return nil
}

func clip(b []byte) string {
	if len(b) > 100 {
		return string(b[:100]) + "..."
	}
	return string(b)
}

func readLocalAuth(status int, body []byte, at time.Time) Answer {
	a := Answer{Status: status, Message: strings.TrimSpace(string(body))}
	switch status {
	case http.StatusOK:
		var r struct {
			AccessToken  string `json:"access_token"`
			Expiry       int64  `json:"expiry"`
			ErrorCode    int    `json:"error_code"`
			ErrorMessage string `json:"error_message"`
		}
		if err := json.Unmarshal(body, &r); err != nil {
			a.Outcome = Refused
			return a
		}
		if r.AccessToken != "" {
			a.Outcome, a.Token, a.Expiry, a.Message = OK, r.AccessToken, time.Unix(r.Expiry, 0), ""
			return a
		}
		// 200 with an error_code: the client must not retry.
		a.Outcome, a.Message = Fatal, r.ErrorMessage
	case http.StatusInternalServerError:
		a.Outcome = Transient
	default:
		a.Outcome = Refused
	}
	return a
}

// oauthAnswer is the answer of the metadata server and of the gsutil
// token endpoint.
type oauthAnswer struct {
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

func readOAuth(a Answer, body []byte, at time.Time) Answer {
	var r oauthAnswer
	if err := json.Unmarshal(body, &r); err != nil || r.AccessToken == "" {
		a.Outcome = Refused
		return a
	}
	a.Outcome, a.Token, a.Message = OK, r.AccessToken, ""
	a.Expiry = at.Add(time.Duration(r.ExpiresIn) * time.Second)
	return a
}

func readMetadata(status int, body []byte, at time.Time) Answer {
	a := Answer{Status: status, Message: strings.TrimSpace(string(body))}
	minted := strings.HasPrefix(a.Message, "failed to mint the token")
	switch {
	case status == http.StatusOK:
		return readOAuth(a, body, at)
	case status >= 500:
		a.Outcome = Transient
	case minted:
		a.Outcome = Fatal
	default:
		a.Outcome = Refused
	}
	return a
}

func readGsutil(status int, body []byte, at time.Time) Answer {
	a := Answer{Status: status}
	if status == http.StatusOK {
		return readOAuth(a, body, at)
	}
	var r oauthAnswer
	_ = json.Unmarshal(body, &r)
	a.Message = r.Description
	switch {
	case status >= 500:
		a.Outcome = Transient
	case r.Error == "invalid_grant" && strings.HasPrefix(r.Description, "cannot get access token"):
		a.Outcome = Fatal
	default:
		a.Outcome = Refused
	}
	return a
}

// readDevshell decodes "<len>\n<JSON array>": four elements are a token,
// one is an error message, where "try again" marks a transient failure.
func readDevshell(frame []byte, at time.Time) Answer {
	var a Answer
	n, payload, ok := bytes.Cut(frame, []byte("\n"))
	size, err := strconv.Atoi(string(n))
	if !ok || err != nil || size != len(payload) {
		a.Outcome, a.Message = Refused, "malformed frame "+strconv.Quote(clip(frame))
		return a
	}
	var arr []any
	if err := json.Unmarshal(payload, &arr); err != nil {
		a.Outcome, a.Message = Refused, "malformed payload"
		return a
	}
	switch len(arr) {
	case 4:
		tok, _ := arr[2].(string)
		secs, _ := arr[3].(float64)
		a.Outcome, a.Token, a.Expiry = OK, tok, at.Add(time.Duration(secs)*time.Second)
	case 1:
		a.Message, _ = arr[0].(string)
		switch {
		case !strings.HasPrefix(a.Message, "cannot get access token"):
			a.Outcome = Refused
		case strings.Contains(a.Message, "try again"):
			a.Outcome = Transient
		default:
			a.Outcome = Fatal
		}
	default:
		a.Outcome, a.Message = Refused, "unexpected reply "+strconv.Quote(clip(frame))
	}
	return a
}

type statusError struct{ status int }

func (e *statusError) Error() string { return "HTTP " + strconv.Itoa(e.status) }

func readAllLimited(resp *http.Response) ([]byte, error) {
	return io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
}

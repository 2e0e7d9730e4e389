package localauth

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"credbroker/broker"
	"credbroker/internal/loopback"
	"credbroker/lucictx"
)

// quiet keeps expected panics out of the test output.
var quiet = slog.New(slog.DiscardHandler)

// goldenExpiry is the expiry of every token in the golden transcripts.
var goldenExpiry = time.Unix(1795375074, 0)

// fakeTokens mints tokens the way the generator behind the golden
// transcripts did, and fails on request: a scope or audience naming a mode
// ("fatal", "transient", "code", "wrapped-code", "panic") picks it.
type fakeTokens struct {
	mu    sync.Mutex
	calls []string
}

func (f *fakeTokens) record(s string) {
	f.mu.Lock()
	f.calls = append(f.calls, s)
	f.mu.Unlock()
}

func (f *fakeTokens) lastCall() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.calls) == 0 {
		return ""
	}
	return f.calls[len(f.calls)-1]
}

func fakeFailure(mode string) error {
	switch mode {
	case "fatal":
		return broker.NewFatal(errors.New("fatal boom"))
	case "transient":
		return broker.NewTransient(errors.New("transient boom"))
	case "code":
		return broker.NewFatalCode(42, errors.New("with code"))
	case "wrapped-code":
		return fmt.Errorf("wrapped: %w", broker.NewFatalCode(42, errors.New("with code")))
	case "plain":
		return errors.New("plain error")
	case "panic":
		panic("boom")
	}
	return nil
}

func (f *fakeTokens) AccessToken(ctx context.Context, account string, scopes []string, lt time.Duration) (broker.Token, error) {
	f.record(fmt.Sprintf("access %s %q %s", account, scopes, lt))
	if len(scopes) == 1 {
		if err := fakeFailure(scopes[0]); err != nil {
			return broker.Token{}, err
		}
	}
	return broker.Token{Value: fmt.Sprintf("tok[%s]lt=%s", strings.Join(scopes, ","), lt), Expiry: goldenExpiry}, nil
}

func (f *fakeTokens) IDToken(ctx context.Context, account, audience string, lt time.Duration) (broker.Token, error) {
	f.record(fmt.Sprintf("id %s %q %s", account, audience, lt))
	if err := fakeFailure(audience); err != nil {
		return broker.Token{}, err
	}
	return broker.Token{Value: fmt.Sprintf("idtok[%s]lt=%s", audience, lt), Expiry: goldenExpiry}, nil
}

func (f *fakeTokens) Email(account string) (string, error) { return "sa-x@example.com", nil }

// startFake starts a server like the one the golden transcripts were taken
// from: accounts "system" and "task", default "task".
func startFake(t *testing.T) (*Server, Info, *fakeTokens) {
	t.Helper()
	f := &fakeTokens{}
	s := &Server{Tokens: f, Accounts: []Account{{ID: "task"}, {ID: "system"}}, DefaultAccount: "task", Logger: quiet}
	info, err := s.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, info, f
}

// rawReq describes a request written byte by byte, so that malformed ones
// (chunked, short bodies, bad headers) can be sent.
type rawReq struct {
	method    string   // default POST
	uri       string   // default the GetOAuthToken path
	proto     string   // default HTTP/1.1
	host      string   // default 127.0.0.1:PORT; "-" sends no Host header
	ct        string   // Content-Type; default application/json, "-" for none
	headers   []string // extra "Key: value" lines
	body      string   // {{SECRET}} becomes the server's secret in base64
	chunked   bool     // send the body chunked, without Content-Length
	short     int      // announce this many more bytes than sent, then half-close
	keepAlive bool     // leave out "Connection: close"
}

func (q rawReq) bytes(info Info) ([]byte, bool) {
	def := func(v, d string) string {
		if v == "" {
			return d
		}
		return v
	}
	body := strings.ReplaceAll(q.body, "{{SECRET}}", base64.StdEncoding.EncodeToString(info.Secret))
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s\r\n", def(q.method, "POST"), def(q.uri, "/rpc/LuciLocalAuthService.GetOAuthToken"), def(q.proto, "HTTP/1.1"))
	if host := def(q.host, "127.0.0.1:"+strconv.Itoa(info.Port)); host != "-" {
		fmt.Fprintf(&b, "Host: %s\r\n", host)
	}
	if ct := def(q.ct, "application/json"); ct != "-" {
		fmt.Fprintf(&b, "Content-Type: %s\r\n", ct)
	}
	for _, h := range q.headers {
		b.WriteString(h + "\r\n")
	}
	switch {
	case q.chunked:
		b.WriteString("Transfer-Encoding: chunked\r\n")
	case q.method == "" || q.method == "POST" || q.method == "PUT":
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body)+q.short)
	}
	if !q.keepAlive {
		b.WriteString("Connection: close\r\n")
	}
	b.WriteString("\r\n")
	if q.chunked {
		fmt.Fprintf(&b, "%x\r\n%s\r\n0\r\n\r\n", len(body), body)
	} else {
		b.WriteString(body)
	}
	return []byte(b.String()), q.short > 0
}

// exchange sends raw bytes on a new connection and returns everything the
// server writes until it closes the connection.
func exchange(t *testing.T, port int, raw []byte, halfClose bool) []byte {
	t.Helper()
	conn, err := net.Dial("tcp", net.JoinHostPort(loopback.IPv4, strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// A guard against a hang, not a timing assertion.
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := conn.Write(raw); err != nil {
		t.Fatal(err)
	}
	if halfClose {
		conn.(*net.TCPConn).CloseWrite()
	}
	data, err := io.ReadAll(conn)
	if err != nil {
		t.Fatalf("reading the response: %v (got %q)", err, data)
	}
	return data
}

var dateLine = regexp.MustCompile(`(?m)^Date: [^\r\n]*\r\n`)

// loadGolden returns the localauth responses of the golden transcripts by
// case name, with Date headers already stripped.
func loadGolden(t *testing.T) map[string]string {
	t.Helper()
	data, err := os.ReadFile("testdata/golden.txt")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	blocks := strings.Split(string(data), "\n----- ")
	for _, blk := range blocks[1:] {
		name, resp, _ := strings.Cut(blk, "\n")
		if strings.HasPrefix(resp, `"`) { // a Go-quoted capture: "...." err=<nil>
			q, _, _ := strings.Cut(resp, ` err=`)
			s, err := strconv.Unquote(q)
			if err != nil {
				t.Fatalf("golden %q: %v", name, err)
			}
			resp = s
		} else {
			// Blocks are separated by an empty line; splitting took the one
			// before "-----" but not the one at the end of the file.
			if strings.HasSuffix(resp, "\n\n") {
				resp = strings.TrimSuffix(resp, "\n")
			}
		}
		out[name] = dateLine.ReplaceAllString(resp, "")
	}
	return out
}

func parseResponse(t *testing.T, data []byte) (int, string) {
	t.Helper()
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(data)), nil)
	if err != nil {
		t.Fatalf("parsing %q: %v", data, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

func TestRequests(t *testing.T) {
	_, info, fake := startFake(t)
	golden := loadGolden(t)
	okBody := func(scopes string) string {
		return `{"scopes":` + scopes + `,"secret":"{{SECRET}}","account_id":"task"}`
	}
	const (
		tokB   = `{"access_token":"tok[b]lt=3m0s","expiry":1795375074}` + "\n"
		idPath = "/rpc/LuciLocalAuthService.GetIDToken"
	)
	tests := []struct {
		name     string // also the golden case compared byte for byte, when there is one
		req      rawReq
		status   int
		body     string
		wantCall string // what the token core must have been asked last
	}{
		// Successes.
		{name: "ok oauth", req: rawReq{body: okBody(`["b","a","b"]`)}, status: 200,
			body: `{"access_token":"tok[a,b]lt=3m0s","expiry":1795375074}` + "\n", wantCall: `access task ["a" "b"] 3m0s`},
		{name: "ok oauth ct charset", req: rawReq{ct: "application/json; charset=utf-8", body: okBody(`["b"]`)}, status: 200, body: tokB},
		{name: "ok oauth no ct", req: rawReq{ct: "-", body: okBody(`["b"]`)}, status: 200, body: tokB},
		{name: "ok oauth case-insensitive keys", req: rawReq{body: `{"SCOPES":["b"],"Secret":"{{SECRET}}","Account_ID":"task"}`}, status: 200, body: tokB},
		{name: "unpadded secret", req: rawReq{body: okBody(`["b"]`)}, status: 200, body: tokB},
		{name: "scopes empty string", req: rawReq{body: okBody(`[""]`)}, status: 200,
			body: `{"access_token":"tok[]lt=3m0s","expiry":1795375074}` + "\n", wantCall: `access task [""] 3m0s`},
		{name: "ok id", req: rawReq{uri: idPath, body: `{"audience":"https://aud","secret":"{{SECRET}}","account_id":"task"}`}, status: 200,
			body: `{"id_token":"idtok[https://aud]lt=3m0s","expiry":1795375074}` + "\n", wantCall: `id task "https://aud" 3m0s`},
		{name: "other account", req: rawReq{body: `{"scopes":["b"],"secret":"{{SECRET}}","account_id":"system"}`}, status: 200, body: tokB, wantCall: `access system ["b"] 3m0s`},
		{name: "localhost host", req: rawReq{host: "localhost:" + strconv.Itoa(info.Port), body: okBody(`["b"]`)}, status: 200, body: tokB},
		{name: "repeated key, last wins", req: rawReq{body: `{"scopes":["x"],"scopes":["b"],"secret":"{{SECRET}}","account_id":"task"}`}, status: 200, body: tokB},

		// Guards added by credbroker, before LUCI's checks.
		{name: "foreign host", req: rawReq{host: "evil.example:" + strconv.Itoa(info.Port), body: okBody(`["b"]`)}, status: 403, body: "Host not allowed.\n"},
		{name: "wrong port in host", req: rawReq{host: "127.0.0.1:1", body: okBody(`["b"]`)}, status: 403, body: "Host not allowed.\n"},
		{name: "no host (HTTP/1.0)", req: rawReq{proto: "HTTP/1.0", host: "-", body: okBody(`["b"]`)}, status: 403, body: "Host not allowed.\n"},
		{name: "origin", req: rawReq{headers: []string{"Origin: http://evil.example"}, body: okBody(`["b"]`)}, status: 403, body: "Requests from browsers are not allowed.\n"},
		{name: "sec-fetch", req: rawReq{headers: []string{"Sec-Fetch-Site: cross-site"}, body: okBody(`["b"]`)}, status: 403, body: "Requests from browsers are not allowed.\n"},

		// LUCI's checks, in order (rows of the reference table).
		{name: "panic", req: rawReq{body: okBody(`["panic"]`)}, status: 500, body: "Internal Server Error. See logs.\n"},
		{name: "GET", req: rawReq{method: "GET", ct: "-"}, status: 405, body: "Expecting POST\n"},
		{name: "PUT", req: rawReq{method: "PUT", body: okBody(`["b"]`)}, status: 405, body: "Expecting POST\n"},
		{name: "bad path", req: rawReq{uri: "/rpc/Other.GetOAuthToken", body: okBody(`["b"]`)}, status: 404, body: "Expecting /rpc/LuciLocalAuthService.<method>\n"},
		{name: "query string", req: rawReq{uri: "/rpc/LuciLocalAuthService.GetOAuthToken?x=1", body: okBody(`["b"]`)}, status: 404, body: "Expecting /rpc/LuciLocalAuthService.<method>\n"},
		{name: "absolute-form URI", req: rawReq{uri: "http://127.0.0.1:" + strconv.Itoa(info.Port) + "/rpc/LuciLocalAuthService.GetOAuthToken", body: okBody(`["b"]`)}, status: 404, body: "Expecting /rpc/LuciLocalAuthService.<method>\n"},
		{name: "unparseable ct", req: rawReq{ct: "application/json; charset", body: okBody(`["b"]`)}, status: 400, body: "Can't parse Content-Type: mime: invalid media parameter\n"},
		{name: "bad ct", req: rawReq{ct: "text/plain", body: okBody(`["b"]`)}, status: 400, body: "Expecting 'application/json' Content-Type\n"},
		{name: "chunked", req: rawReq{chunked: true, body: okBody(`["b"]`)}, status: 400, body: "Expecting 'Content-Length' header, <64Kb\n"},
		// The 64 KiB body itself is not sent: the server answers from the
		// header, and closing with unread bytes would reset the connection.
		{name: "64k exactly", req: rawReq{short: 65536}, status: 400, body: "Expecting 'Content-Length' header, <64Kb\n"},
		{name: "short body", req: rawReq{body: okBody(`["b"]`), short: 10, keepAlive: true}, status: 502, body: "Can't read the request body\n"},
		{name: "unknown method", req: rawReq{uri: "/rpc/LuciLocalAuthService.Foo", body: okBody(`["b"]`)}, status: 404, body: "Unknown RPC method \"Foo\"\n"},
		{name: "unknown method, bad body", req: rawReq{uri: "/rpc/LuciLocalAuthService.Foo", body: "no"}, status: 404, body: "Unknown RPC method \"Foo\"\n"},
		{name: "64k-1 spaces", req: rawReq{body: strings.Repeat(" ", 65535)}, status: 400, body: "Not JSON body - unexpected end of JSON input\n"},
		{name: "empty body", req: rawReq{body: ""}, status: 400, body: "Not JSON body - unexpected end of JSON input\n"},
		{name: "bad json", req: rawReq{body: "no"}, status: 400, body: "Not JSON body - invalid character 'o' in literal null (expecting 'u')\n"},
		{name: "bad base64 secret", req: rawReq{body: `{"scopes":["b"],"secret":"!!!!","account_id":"task"}`}, status: 400, body: "Not JSON body - illegal base64 data at input byte 0\n"},
		{name: "no scopes", req: rawReq{body: `{"secret":"{{SECRET}}","account_id":"task"}`}, status: 400, body: "Bad request: field \"scopes\" is required.\n"},
		{name: "no scopes, no secret", req: rawReq{body: `{"account_id":"task"}`}, status: 400, body: "Bad request: field \"scopes\" is required.\n"},
		{name: "empty scopes list", req: rawReq{body: okBody(`[]`)}, status: 400, body: "Bad request: field \"scopes\" is required.\n"},
		{name: "no secret", req: rawReq{body: `{"scopes":["b"],"account_id":"task"}`}, status: 400, body: "Bad request: field \"secret\" is required.\n"},
		{name: "no account", req: rawReq{body: `{"scopes":["b"],"secret":"{{SECRET}}"}`}, status: 400, body: "Bad request: field \"account_id\" is required.\n"},
		{name: "bad secret+no account", req: rawReq{body: `{"scopes":["b"],"secret":"Zm9v"}`}, status: 400, body: "Bad request: field \"account_id\" is required.\n"},
		{name: "id no audience", req: rawReq{uri: idPath, body: `{"secret":"{{SECRET}}","account_id":"task"}`}, status: 400, body: "Bad request: field \"audience\" is required.\n"},
		{name: "id no secret", req: rawReq{uri: idPath, body: `{"audience":"a","account_id":"task"}`}, status: 400, body: "Bad request: field \"secret\" is required.\n"},
		{name: "id no account", req: rawReq{uri: idPath, body: `{"audience":"a","secret":"{{SECRET}}"}`}, status: 400, body: "Bad request: field \"account_id\" is required.\n"},
		{name: "bad secret", req: rawReq{body: `{"scopes":["b"],"secret":"Zm9v","account_id":"task"}`}, status: 403, body: "Invalid secret.\n"},
		{name: "bad secret unknown acct", req: rawReq{body: `{"scopes":["b"],"secret":"Zm9v","account_id":"zzz"}`}, status: 403, body: "Invalid secret.\n"},
		{name: "unknown acct", req: rawReq{body: `{"scopes":["b"],"secret":"{{SECRET}}","account_id":"zzz"}`}, status: 404, body: "Unrecognized account ID \"zzz\".\n"},
		{name: "mode transient", req: rawReq{body: okBody(`["transient"]`)}, status: 500, body: "Transient error - transient boom\n"},
		{name: "mode fatal", req: rawReq{body: okBody(`["fatal"]`)}, status: 200, body: `{"error_code":-1,"error_message":"fatal boom"}` + "\n"},
		{name: "plain error is fatal", req: rawReq{body: okBody(`["plain"]`)}, status: 200, body: `{"error_code":-1,"error_message":"plain error"}` + "\n"},
		{name: "mode code", req: rawReq{body: okBody(`["code"]`)}, status: 200, body: `{"error_code":42,"error_message":"with code"}` + "\n"},
		// LUCI sends -1 here (the golden shows it); errors.As keeps the code.
		{name: "wrapped code keeps its code", req: rawReq{body: okBody(`["wrapped-code"]`)}, status: 200, body: `{"error_code":42,"error_message":"wrapped: with code"}` + "\n"},
		{name: "id transient", req: rawReq{uri: idPath, body: `{"audience":"transient","secret":"{{SECRET}}","account_id":"task"}`}, status: 500, body: "Transient error - transient boom\n"},
		{name: "id code", req: rawReq{uri: idPath, body: `{"audience":"code","secret":"{{SECRET}}","account_id":"task"}`}, status: 200, body: `{"error_code":42,"error_message":"with code"}` + "\n"},
		{name: "id panic", req: rawReq{uri: idPath, body: `{"audience":"panic","secret":"{{SECRET}}","account_id":"task"}`}, status: 500, body: "Internal Server Error. See logs.\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, half := tt.req.bytes(info)
			got := exchange(t, info.Port, raw, half)
			status, body := parseResponse(t, got)
			if status != tt.status || body != tt.body {
				t.Errorf("got %d %q\nwant %d %q", status, body, tt.status, tt.body)
			}
			if want, ok := golden[tt.name]; ok {
				if got := dateLine.ReplaceAllString(string(got), ""); got != want {
					t.Errorf("not the golden bytes:\ngot  %q\nwant %q", got, want)
				}
			}
			if tt.wantCall != "" {
				if got := fake.lastCall(); got != tt.wantCall {
					t.Errorf("token core got %s, want %s", got, tt.wantCall)
				}
			}
		})
	}

	// Every golden case but the deliberately changed one is covered above.
	names := map[string]bool{}
	for _, tt := range tests {
		names[tt.name] = true
	}
	for name := range golden {
		if !names[name] && name != "mode wrapped-code" {
			t.Errorf("golden case %q is not tested", name)
		}
	}
}

func TestStartInfo(t *testing.T) {
	f := &fakeTokens{}
	tests := []struct {
		name    string
		srv     *Server
		want    []lucictx.LocalAuthAccount
		wantErr string
	}{
		{
			name: "emails from the token core, sorted",
			srv:  &Server{Tokens: f, Accounts: []Account{{ID: "task"}, {ID: "system", Email: "sys@example.com"}}, DefaultAccount: "task"},
			want: []lucictx.LocalAuthAccount{{ID: "system", Email: "sys@example.com"}, {ID: "task", Email: "sa-x@example.com"}},
		},
		{
			name: "no email",
			srv:  &Server{Tokens: noEmail{f}, Accounts: []Account{{ID: "b"}, {ID: "a", Email: "a@x"}}},
			want: []lucictx.LocalAuthAccount{{ID: "a", Email: "a@x"}, {ID: "b", Email: "-"}},
		},
		{name: "unknown default", srv: &Server{Tokens: f, Accounts: []Account{{ID: "a"}}, DefaultAccount: "b"}, wantErr: "default account"},
		{name: "duplicate", srv: &Server{Tokens: f, Accounts: []Account{{ID: "a"}, {ID: "a"}}}, wantErr: "twice"},
		{name: "empty id", srv: &Server{Tokens: f, Accounts: []Account{{ID: ""}}}, wantErr: "empty id"},
		{name: "no tokens", srv: &Server{Accounts: []Account{{ID: "a"}}}, wantErr: "Tokens is nil"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.srv
			info, err := s.Start(context.Background())
			defer s.Close()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Start err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(info.Accounts, tt.want) {
				t.Errorf("accounts = %+v, want %+v", info.Accounts, tt.want)
			}
			if info.DefaultAccountID != s.DefaultAccount || info.Port == 0 || len(info.Secret) != 48 {
				t.Errorf("info = port %d, default %q, %d secret bytes", info.Port, info.DefaultAccountID, len(info.Secret))
			}
			la := info.LocalAuth()
			if la.RPCPort != uint32(info.Port) || !bytes.Equal(la.Secret, info.Secret) || !slices.Equal(la.Accounts, tt.want) {
				t.Errorf("LocalAuth() = %+v", la)
			}
		})
	}
}

type noEmail struct{ Tokens }

func TestLifecycle(t *testing.T) {
	s := &Server{Tokens: &fakeTokens{}, Accounts: []Account{{ID: "a"}}}
	if err := s.Close(); err != nil {
		t.Fatalf("Close before Start: %v", err)
	}
	if _, err := s.Start(context.Background()); err == nil {
		t.Fatal("Start after Close succeeded")
	}

	s = &Server{Tokens: &fakeTokens{}, Accounts: []Account{{ID: "a"}}}
	info, err := s.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Start(context.Background()); err == nil {
		t.Fatal("second Start succeeded")
	}
	other := &Server{Tokens: &fakeTokens{}, Accounts: []Account{{ID: "a"}}}
	info2, err := other.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if bytes.Equal(info.Secret, info2.Secret) {
		t.Fatal("two servers share a secret")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := net.Dial("tcp", net.JoinHostPort(loopback.IPv4, strconv.Itoa(info.Port))); err == nil {
		t.Error("the port still accepts connections after Close")
	}
}

func TestFixedPort(t *testing.T) {
	lns, port, err := loopback.Listen(0, false)
	if err != nil {
		t.Fatal(err)
	}
	lns[0].Close()
	s := &Server{Tokens: &fakeTokens{}, Accounts: []Account{{ID: "a"}}, Port: port}
	info, err := s.Start(context.Background())
	if err != nil {
		t.Skipf("port %d was taken again before the server could bind it: %v", port, err)
	}
	defer s.Close()
	if info.Port != port {
		t.Fatalf("port = %d, want %d", info.Port, port)
	}
}

// TestCloseEndsKeepAlive checks that a kept-alive connection cannot be used
// for another token once the server is closed (LUCI's server keeps
// answering on it).
func TestCloseEndsKeepAlive(t *testing.T) {
	s, info, _ := startFake(t)
	conn, err := net.Dial("tcp", net.JoinHostPort(loopback.IPv4, strconv.Itoa(info.Port)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second)) // a guard against a hang
	req, _ := rawReq{body: `{"scopes":["b"],"secret":"{{SECRET}}","account_id":"task"}`, keepAlive: true}.bytes(info)
	br := bufio.NewReader(conn)

	if _, err := conn.Write(req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Close {
		t.Fatalf("first request: %d, close=%v", resp.StatusCode, resp.Close)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	conn.Write(req) // may or may not fail, depending on when the close is seen
	if resp, err := http.ReadResponse(br, nil); err == nil {
		t.Fatalf("served %d on a kept-alive connection after Close", resp.StatusCode)
	}
}

// TestRequestsEndWithStartContext checks that the context given to Start
// reaches the token core.
func TestRequestsEndWithStartContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	block := &blockingTokens{started: make(chan struct{})}
	s := &Server{Tokens: block, Accounts: []Account{{ID: "a"}}, DefaultAccount: "a"}
	info, err := s.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := NewClient(info.LocalAuth())
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		<-block.started
		cancel()
	}()
	_, err = c.AccessToken(context.Background(), []string{"s"}, 0)
	if !broker.IsTransient(err) || !strings.Contains(err.Error(), "HTTP 500: Transient error - context canceled") {
		t.Fatalf("err = %v", err)
	}
}

type blockingTokens struct {
	fakeTokens
	started chan struct{}
}

func (b *blockingTokens) AccessToken(ctx context.Context, account string, scopes []string, lt time.Duration) (broker.Token, error) {
	close(b.started)
	<-ctx.Done()
	return broker.Token{}, broker.NewTransient(ctx.Err())
}

// FuzzDecodeRequest checks that no body makes the decoder panic, and that
// what it accepts satisfies the checks the handler relies on.
func FuzzDecodeRequest(f *testing.F) {
	for _, s := range []string{
		``, `no`, `{}`, `[]`, `null`, `{"scopes":["b","a","b"],"secret":"Zm9v","account_id":"task"}`,
		`{"SCOPES":[""],"Secret":"Zm9v","ACCOUNT_ID":"x"}`, `{"audience":"a","secret":"Zm9v","account_id":"x"}`,
		`{"secret":"!!!!"}`, `{"scopes":"x"}`, `{"scopes":[1]}`, `{"secret":"Zm9v","secret":null}`,
	} {
		f.Add(true, []byte(s))
		f.Add(false, []byte(s))
	}
	f.Fuzz(func(t *testing.T, oauth bool, body []byte) {
		method := methodID
		if oauth {
			method = methodOAuth
		}
		req, err := decodeRequest(method, body)
		if err != nil {
			var he *httpError
			if !errors.As(err, &he) || he.status != http.StatusBadRequest {
				t.Fatalf("error %v is not a 400", err)
			}
			return
		}
		if len(req.Secret) == 0 || req.AccountID == "" {
			t.Fatalf("accepted without secret or account: %+v", req)
		}
		if oauth && (len(req.Scopes) == 0 || !slices.IsSorted(req.Scopes) || len(slices.Compact(slices.Clone(req.Scopes))) != len(req.Scopes)) {
			t.Fatalf("scopes not normalized: %q", req.Scopes)
		}
		if !oauth && req.Audience == "" {
			t.Fatalf("accepted without audience")
		}
	})
}

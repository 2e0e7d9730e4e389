package devshell

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"credbroker/broker"
	"credbroker/broker/brokertest"
)

var quietLogger = slog.New(slog.DiscardHandler)

var testNow = time.Date(2026, 8, 21, 12, 0, 0, 0, time.UTC)

// fakeTokens returns tok1 with 1799.5 s left at testNow, or err, and
// records what it was asked.
type fakeTokens struct {
	mu      sync.Mutex
	err     error
	expiry  time.Time
	account string
	scopes  []string
	minLife time.Duration
	calls   int
}

func (f *fakeTokens) AccessToken(_ context.Context, account string, scopes []string, minLifetime time.Duration) (broker.Token, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	f.account, f.scopes, f.minLife = account, scopes, minLifetime
	if f.err != nil {
		return broker.Token{}, f.err
	}
	exp := f.expiry
	if exp.IsZero() {
		exp = testNow.Add(1799*time.Second + 500*time.Millisecond)
	}
	return broker.Token{Value: "tok1", Expiry: exp}, nil
}

func startServer(t *testing.T, s *Server) Info {
	t.Helper()
	if s.Account == "" {
		s.Account = "sa-x"
	}
	if s.Email == "" {
		s.Email = "sa-x@example.com"
	}
	if s.Now == nil {
		s.Now = func() time.Time { return testNow }
	}
	if s.Logger == nil {
		s.Logger = quietLogger
	}
	info, err := s.Start(t.Context())
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return info
}

// exchange sends each chunk in its own write (half-closing after the last
// one when halfClose is set) and returns everything the server sends back.
func exchange(t *testing.T, addr string, halfClose bool, chunks ...string) (string, error) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	for i, ch := range chunks {
		if i > 0 {
			// The server must not depend on segment boundaries: make sure
			// the first chunk left as its own segment before sending more.
			time.Sleep(20 * time.Millisecond)
		}
		if _, err := io.WriteString(c, ch); err != nil {
			t.Fatalf("write: %v", err)
		}
	}
	if halfClose {
		_ = c.(*net.TCPConn).CloseWrite()
	}
	got, err := io.ReadAll(c)
	return string(got), err
}

func v4(info Info) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(info.Port)) }

const okReply = "37\n[\"sa-x@example.com\",null,\"tok1\",1799]"

func TestWire(t *testing.T) {
	tests := []struct {
		name      string
		chunks    []string
		halfClose bool
		want      string
	}{
		// Cases captured from the luci-go server; same bytes expected.
		{"golden empty array", []string{"2\n[]"}, false, okReply},
		{"golden array contents ignored", []string{"5\n[\"a\"]"}, false, okReply},
		{"golden numbers ignored", []string{"10\n[1,2,3,45]"}, false, okReply},
		{"golden object", []string{"2\n{}"}, false,
			"103\n[\"failed to deserialize from JSON: json: cannot unmarshal object into Go value of type []interface {}\"]"},
		{"golden bad json", []string{"8\n{BADJSON"}, false,
			"101\n[\"failed to deserialize from JSON: invalid character 'B' looking for beginning of object key string\"]"},
		{"golden length not a number", []string{"x\n[]"}, false,
			"71\n[\"length is not a number: strconv.Atoi: parsing \\\"x\\\": invalid syntax\"]"},
		{"golden no newline", []string{"[]"}, true, "35\n[\"no newline in the first 6 bytes\"]"},
		{"golden nothing sent", nil, true, "34\n[\"failed to read the header: EOF\"]"},
		{"golden trailing bytes ignored", []string{"2\n[]trailing"}, false, okReply},

		// Where the reference panicked, read zero bytes or depended on
		// segments, the answer now follows the frame.
		{"java trailing newline", []string{"2\n[]\n"}, false, okReply},
		{"split header and body", []string{"2\n", "[]"}, false, okReply},
		{"split inside header", []string{"1", "0\n[1,2,", "3,45]"}, false, okReply},
		{"negative length", []string{"-1\n[]"}, false,
			"45\n[\"length out of range: -1 (want 0 to 65536)\"]"},
		{"oversized length", []string{"99999\n[]"}, false,
			"48\n[\"length out of range: 99999 (want 0 to 65536)\"]"},
		{"header too long", []string{"123456\n[]"}, false, "35\n[\"no newline in the first 6 bytes\"]"},
		{"short body", []string{"3\n[]"}, true,
			"45\n[\"failed to receive request: unexpected EOF\"]"},
		{"zero length", []string{"0\n"}, false,
			"65\n[\"failed to deserialize from JSON: unexpected end of JSON input\"]"},
		{"null payload", []string{"4\nnull"}, false,
			"60\n[\"failed to deserialize from JSON: want an array, got null\"]"},
		{"string payload", []string{"4\n\"ab\""}, false,
			"103\n[\"failed to deserialize from JSON: json: cannot unmarshal string into Go value of type []interface {}\"]"},
	}
	s := &Server{Tokens: &fakeTokens{}}
	info := startServer(t, s)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := exchange(t, v4(info), tt.halfClose, tt.chunks...)
			if err != nil {
				t.Fatalf("read: %v (got %q)", err, got)
			}
			if got != tt.want {
				t.Errorf("reply\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestTokenCoreErrors(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"transient", broker.Transientf("upstream 503 with secret-detail"), "cannot get access token: temporary failure, try again"},
		{"fatal", broker.Fatalf("key file /x/y refused: secret-detail"), "cannot get access token: the credential was refused, see the broker's log"},
		{"fatal code", broker.NewFatalCode(7, errors.New("secret-detail")), "cannot get access token: the credential was refused, see the broker's log"},
		{"plain error", errors.New("secret-detail"), "cannot get access token: the credential was refused, see the broker's log"},
		{"unknown account", broker.NewFatal(fmt.Errorf("%w %q", broker.ErrUnknownAccount, "secret-detail")), "cannot get access token: the account is not served"},
		{"not supported", broker.NewFatal(fmt.Errorf("secret-detail: %w", broker.ErrNotSupported)), "cannot get access token: not supported by this credential"},
		{"deadline", broker.NewTransient(context.DeadlineExceeded), "cannot get access token: timed out, try again"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info := startServer(t, &Server{Tokens: &fakeTokens{err: tt.err}})
			got, err := exchange(t, v4(info), false, "2\n[]")
			if err != nil {
				t.Fatal(err)
			}
			want := string(mustFrame(t, []any{tt.want}))
			if got != want {
				t.Errorf("got %q, want %q", got, want)
			}
			if strings.Contains(got, "secret-detail") {
				t.Errorf("reply leaks error details: %q", got)
			}
		})
	}
}

func mustFrame(t *testing.T, payload []any) []byte {
	t.Helper()
	f, err := encodeFrame(payload)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestReplyFields(t *testing.T) {
	tests := []struct {
		name    string
		email   string
		project string
		expiry  time.Time
		want    string
	}{
		{"project id", "", "proj-1", time.Time{},
			`41` + "\n" + `["sa-x@example.com","proj-1","tok1",1799]`},
		{"expired token still says 1", "", "", testNow.Add(-time.Minute),
			`34` + "\n" + `["sa-x@example.com",null,"tok1",1]`},
		{"half a second left says 1", "", "", testNow.Add(500 * time.Millisecond),
			`34` + "\n" + `["sa-x@example.com",null,"tok1",1]`},
		{"non-ASCII email is escaped", "é😀@example.com", "", time.Time{},
			`51` + "\n" + `["\u00e9\ud83d\ude00@example.com",null,"tok1",1799]`},
		{"html characters are not escaped", "<a&b>@example.com", "", time.Time{},
			`38` + "\n" + `["<a&b>@example.com",null,"tok1",1799]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &Server{Tokens: &fakeTokens{expiry: tt.expiry}, Email: tt.email, ProjectID: tt.project}
			info := startServer(t, s)
			got, err := exchange(t, v4(info), false, "2\n[]")
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestScopesAccountAndLifetime(t *testing.T) {
	tests := []struct {
		name        string
		scopes      []string
		minLife     time.Duration
		wantScopes  []string
		wantMinLife time.Duration
	}{
		{"defaults", nil, 0, DefaultScopes, MinLifetime},
		{"custom scopes, longer minimum", []string{"s1"}, 10 * time.Minute, []string{"s1"}, 10 * time.Minute},
		{"shorter minimum raised", nil, 10 * time.Second, DefaultScopes, MinLifetime},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeTokens{}
			info := startServer(t, &Server{Tokens: f, Account: "acct", Scopes: tt.scopes, MinLifetime: tt.minLife})
			if _, err := exchange(t, v4(info), false, "2\n[]"); err != nil {
				t.Fatal(err)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.account != "acct" || strings.Join(f.scopes, " ") != strings.Join(tt.wantScopes, " ") || f.minLife != tt.wantMinLife {
				t.Errorf("asked for (%q, %q, %v), want (acct, %q, %v)", f.account, f.scopes, f.minLife, tt.wantScopes, tt.wantMinLife)
			}
		})
	}
}

func TestIPv6(t *testing.T) {
	info := startServer(t, &Server{Tokens: &fakeTokens{}})
	c, err := net.Dial("tcp", net.JoinHostPort("::1", strconv.Itoa(info.Port)))
	if err != nil {
		t.Skipf("no IPv6 loopback on this machine: %v", err)
	}
	c.Close()
	got, err := exchange(t, net.JoinHostPort("::1", strconv.Itoa(info.Port)), false, "2\n[]")
	if err != nil || got != okReply {
		t.Fatalf("over [::1]: got %q, %v", got, err)
	}
	got, err = exchange(t, net.JoinHostPort("localhost", strconv.Itoa(info.Port)), false, "2\n[]")
	if err != nil || got != okReply {
		t.Fatalf("over localhost: got %q, %v", got, err)
	}
}

func TestAllowPeer(t *testing.T) {
	f := &fakeTokens{}
	info := startServer(t, &Server{Tokens: f, AllowPeer: func(net.Conn) bool { return false }})
	got, err := exchange(t, v4(info), false, "2\n[]")
	if err != nil {
		t.Fatal(err)
	}
	if want := "40\n[\"connection refused: peer not allowed\"]"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if f.calls != 0 {
		t.Errorf("token core asked %d times for a refused peer", f.calls)
	}
}

func TestDeadline(t *testing.T) {
	info := startServer(t, &Server{Tokens: &fakeTokens{}, Deadline: 50 * time.Millisecond})
	c, err := net.Dial("tcp", v4(info))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got, err := io.ReadAll(c) // send nothing: the server gives up on its own
	if err != nil {
		t.Fatal(err)
	}
	if want := "40\n[\"failed to read the header: timed out\"]"; string(got) != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestCloseEndsOpenConnections(t *testing.T) {
	s := &Server{Tokens: &fakeTokens{}}
	info := startServer(t, s)
	c, err := net.Dial("tcp", v4(info))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "2\n"); err != nil { // a request in progress
		t.Fatal(err)
	}
	// Make sure the server is holding the connection before closing.
	probe, err := exchange(t, v4(info), false, "2\n[]")
	if err != nil || probe != okReply {
		t.Fatalf("probe: %q, %v", probe, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(c)
	if len(got) != 0 {
		t.Errorf("got %q after Close", got)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Errorf("connection still open after Close")
	}
	if _, err := net.Dial("tcp", v4(info)); err == nil {
		t.Errorf("still accepting after Close")
	}
	if _, err := s.Start(t.Context()); err == nil {
		t.Errorf("Start after Close succeeded")
	}
}

func TestConnectionCap(t *testing.T) {
	info := startServer(t, &Server{Tokens: &fakeTokens{}, MaxConns: 1})
	hold, err := net.Dial("tcp", v4(info))
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Close()
	// The accept loop takes connections in order: the held one counts
	// before the next is accepted.
	got, _ := exchange(t, v4(info), false, "2\n[]")
	if got != "" {
		t.Errorf("connection over the cap got %q", got)
	}
	hold.Close()
}

func TestStartErrors(t *testing.T) {
	if _, err := (&Server{}).Start(t.Context()); err == nil {
		t.Error("Start without Tokens succeeded")
	}
	s := &Server{Tokens: &fakeTokens{}}
	startServer(t, s)
	if _, err := s.Start(t.Context()); err == nil {
		t.Error("second Start succeeded")
	}
}

func TestInfoEnv(t *testing.T) {
	got := Info{Port: 4242}.Env()
	if len(got) != 1 || got["DEVSHELL_CLIENT_PORT"] != "4242" {
		t.Errorf("Env() = %v", got)
	}
}

func startWithBroker(t *testing.T) Info {
	t.Helper()
	b := broker.New(broker.Options{})
	t.Cleanup(b.Close)
	if err := b.AddAccount("main", &brokertest.Source{Prefix: "real-tok-", Mail: "real@example.com"}); err != nil {
		t.Fatal(err)
	}
	email, _ := b.Email("main")
	info, err := (&Server{Tokens: b, Account: "main", Email: email}).Start(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// TestRealBroker runs the server on the real token core: the token is
// minted once and then served from the cache.
func TestRealBroker(t *testing.T) {
	b := broker.New(broker.Options{})
	t.Cleanup(b.Close)
	if err := b.AddAccount("main", &brokertest.Source{Prefix: "real-tok-", Mail: "real@example.com"}); err != nil {
		t.Fatal(err)
	}
	s := &Server{Tokens: b, Account: "main", Email: "real@example.com"}
	info, err := s.Start(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	for range 3 {
		got, err := exchange(t, v4(info), false, "2\n[]")
		if err != nil {
			t.Fatal(err)
		}
		var arr []any
		if err := json.Unmarshal([]byte(got[strings.IndexByte(got, '\n')+1:]), &arr); err != nil {
			t.Fatalf("reply %q: %v", got, err)
		}
		exp, _ := arr[3].(float64)
		if arr[0] != "real@example.com" || arr[1] != nil || arr[2] != "real-tok-1" || exp < 3500 || exp > 3600 {
			t.Errorf("reply %q", got)
		}
	}
}

// TestJavaClient sends exactly what google-auth-library-java's
// CloudShellCredentials sends and parses the reply its way: skip the
// first line, read the rest as a JSON array, take index 2.
func TestJavaClient(t *testing.T) {
	info := startWithBroker(t)
	c, err := net.Dial("tcp", net.JoinHostPort("localhost", strconv.Itoa(info.Port)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second)) // the Java client's read timeout
	if _, err := io.WriteString(c, "2\n[]\n"); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	if _, err := r.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	var arr []json.RawMessage
	if err := json.NewDecoder(r).Decode(&arr); err != nil {
		t.Fatal(err)
	}
	if len(arr) < 3 || string(arr[2]) != `"real-tok-1"` {
		t.Fatalf("reply array %s", arr)
	}
}

// TestPythonOAuth2Client runs oauth2client's DevshellCredentials, the
// client gsutil uses, against the server.
func TestPythonOAuth2Client(t *testing.T) {
	const py = "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		t.Skipf("Debian python not installed: %v", err)
	}
	if err := exec.Command(py, "-c", "import oauth2client.contrib.devshell").Run(); err != nil {
		t.Skipf("python3-oauth2client not installed (apt-get install python3-oauth2client): %v", err)
	}
	info := startWithBroker(t)
	script := `
import datetime, json
from oauth2client.contrib.devshell import DevshellCredentials
c = DevshellCredentials()
left = (c.token_expiry - datetime.datetime.utcnow()).total_seconds()
print(json.dumps([c.user_email, c.project_id, c.access_token, 3500 < left <= 3600]))
`
	cmd := exec.Command(py, "-c", script)
	cmd.Env = append(os.Environ(), "DEVSHELL_CLIENT_PORT="+strconv.Itoa(info.Port))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	if got, want := strings.TrimSpace(string(out)), `["real@example.com", null, "real-tok-1", true]`; got != want {
		t.Errorf("python got %s, want %s", got, want)
	}
}

// stallingTokens never answers before the request's context ends.
type stallingTokens struct{}

func (stallingTokens) AccessToken(ctx context.Context, _ string, _ []string, _ time.Duration) (broker.Token, error) {
	<-ctx.Done()
	return broker.Token{}, broker.NewTransient(ctx.Err())
}

// A mint that takes the connection's whole deadline still gets its error
// reply written: the write has its own allowance once the deadline is near.
func TestDeadlineDuringMint(t *testing.T) {
	info := startServer(t, &Server{Tokens: stallingTokens{}, Account: "sa-x@example.com", Deadline: 100 * time.Millisecond})
	got, err := exchange(t, v4(info), false, "2\n[]")
	if err != nil {
		t.Fatal(err)
	}
	if want := string(errorFrame("cannot get access token: timed out, try again")); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

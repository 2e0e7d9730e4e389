package gcemeta

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"credbroker/broker"
)

// fakeNow is the clock of wire tests; fakeTokens' tokens expire 1799.5 s
// after it, so expires_in is 1799 as in the golden transcripts.
var fakeNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// fakeTokens is a token core that answers like the fake generator the
// golden transcripts were captured with, and records what it was asked.
type fakeTokens struct {
	mu        sync.Mutex
	scopes    [][]string
	audiences []string
	accounts  []string
	lifetimes []time.Duration
	err       error         // returned by every call when set
	expiresIn time.Duration // lifetime of issued tokens; default 1799.5 s
}

func (f *fakeTokens) AccessToken(_ context.Context, account string, scopes []string, minLifetime time.Duration) (broker.Token, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.scopes = append(f.scopes, slices.Clone(scopes))
	f.accounts = append(f.accounts, account)
	f.lifetimes = append(f.lifetimes, minLifetime)
	if f.err != nil {
		return broker.Token{}, f.err
	}
	return broker.Token{
		Value:  fmt.Sprintf("tok[%s]lt=%s", strings.Join(scopes, ","), minLifetime),
		Expiry: fakeNow.Add(f.lifetime()),
	}, nil
}

func (f *fakeTokens) IDToken(_ context.Context, account, audience string, minLifetime time.Duration) (broker.Token, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.audiences = append(f.audiences, audience)
	f.accounts = append(f.accounts, account)
	f.lifetimes = append(f.lifetimes, minLifetime)
	if f.err != nil {
		return broker.Token{}, f.err
	}
	return broker.Token{
		Value:  fmt.Sprintf("idtok[%s]lt=%s", audience, minLifetime),
		Expiry: fakeNow.Add(f.lifetime()),
	}, nil
}

func (f *fakeTokens) lifetime() time.Duration {
	if f.expiresIn != 0 {
		return f.expiresIn
	}
	return 1799*time.Second + 500*time.Millisecond
}

func (f *fakeTokens) lastAudience() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.audiences) == 0 {
		return ""
	}
	return f.audiences[len(f.audiences)-1]
}

func (f *fakeTokens) lastScopes() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.scopes) == 0 {
		return nil
	}
	return f.scopes[len(f.scopes)-1]
}

// waits records the waits a server started and lets a test decide when
// they end.
type waits struct {
	mu      sync.Mutex
	asked   []time.Duration
	fire    bool          // end every wait at once
	started chan struct{} // gets a value when a wait starts (if not nil)
}

func (w *waits) after(d time.Duration) (<-chan time.Time, func()) {
	w.mu.Lock()
	w.asked = append(w.asked, d)
	w.mu.Unlock()
	ch := make(chan time.Time, 1)
	if w.fire {
		ch <- fakeNow
	}
	if w.started != nil {
		w.started <- struct{}{}
	}
	return ch, func() {}
}

func (w *waits) durations() []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.asked)
}

// goldenConfig is the configuration the golden transcripts were captured
// with.
func goldenConfig(s *Server) {
	s.ProjectID = "none"
	s.NumericProjectID = "0"
	s.InstanceName = "vm"
	s.Accounts = []Account{{ID: "sa", Email: "sa-x@example.com", Scopes: []string{"s2", "s1"}}}
}

// startFake starts a Server on a fake token core and fake waits,
// configured by goldenConfig and then cfg.
func startFake(t *testing.T, cfg func(*Server)) (*Server, Info, *fakeTokens, *waits) {
	t.Helper()
	ft := &fakeTokens{}
	w := &waits{fire: true}
	s := &Server{Tokens: ft, Logger: slog.New(slog.DiscardHandler), now: func() time.Time { return fakeNow }, after: w.after}
	goldenConfig(s)
	if cfg != nil {
		cfg(s)
	}
	info, err := s.Start(context.Background())
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, info, ft, w
}

var dateLine = regexp.MustCompile(`(?m)^Date: .*\r\n`)

// roundTrip sends raw request text (lines joined with CRLF, ending with a
// blank line) and returns the whole response with the Date header
// removed and CRLFs turned into LFs, as the golden file shows them.
func roundTrip(t *testing.T, addr, raw string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	head, body, ok := strings.Cut(string(b), "\r\n\r\n")
	if !ok {
		t.Fatalf("no header end in %q", b)
	}
	head = dateLine.ReplaceAllString(head+"\r\n", "")
	return strings.ReplaceAll(head, "\r\n", "\n") + "\n" + body
}

// get builds a GET for path with the flavor header and the given extra
// header lines.
func get(addr, path string, extra ...string) string {
	return rawRequest("GET", path, "Host: "+addr, append([]string{"Metadata-Flavor: Google"}, extra...)...)
}

func rawRequest(method, path, host string, headers ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\n%s\r\n", method, path, host)
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("Connection: close\r\n\r\n")
	return b.String()
}

// want builds an expected response the way the server writes it.
func want(status, contentType, etag, body string, extra ...string) string {
	var b strings.Builder
	b.WriteString("HTTP/1.1 " + status + "\n")
	b.WriteString("Content-Type: " + contentType + "\n")
	if etag != "" {
		b.WriteString("Etag: " + etag + "\n")
	}
	for _, e := range extra {
		b.WriteString(e + "\n")
	}
	b.WriteString("Metadata-Flavor: Google\nServer: Metadata Server for VM\n")
	if strings.HasPrefix(contentType, "text/plain") {
		b.WriteString("X-Content-Type-Options: nosniff\n")
	}
	b.WriteString("X-Frame-Options: SAMEORIGIN\nX-Xss-Protection: 0\n")
	fmt.Fprintf(&b, "Content-Length: %d\nConnection: close\n\n%s", len(body), body)
	return b.String()
}

// wantError is an error answer.
func wantError(status, msg string) string {
	return want(status, "text/plain; charset=utf-8", "", msg+"\n")
}

// goldenCase is one transcript of the golden file.
type goldenCase struct {
	label    string
	response string
}

// readGolden parses testdata/luci-golden-gcemeta.txt (the gcemeta part of
// the transcripts captured from LUCI's server) into its cases, each
// response cut at its Content-Length.
func readGolden(t *testing.T) (addr string, cases []goldenCase) {
	t.Helper()
	f, err := os.Open("testdata/luci-golden-gcemeta.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := bufio.NewReader(f)
	for {
		line, err := r.ReadString('\n')
		if err == io.EOF {
			return addr, cases
		}
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case strings.HasPrefix(line, "addr: "):
			addr = strings.TrimSpace(strings.TrimPrefix(line, "addr: "))
		case strings.HasPrefix(line, "----- "):
			var head strings.Builder
			length := 0
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					t.Fatalf("truncated golden case %q", line)
				}
				l = strings.TrimSuffix(l, "\r\n") + "\n" // the headers were captured with CRLF
				head.WriteString(l)
				if l == "\n" {
					break
				}
				if v, ok := strings.CutPrefix(l, "Content-Length: "); ok {
					if length, err = strconv.Atoi(strings.TrimSpace(v)); err != nil {
						t.Fatalf("golden case %q: %v", line, err)
					}
				}
			}
			if strings.HasPrefix(line, "----- HEAD") {
				length = 0 // a HEAD response announces a body it does not send
			}
			body := make([]byte, length)
			if _, err := io.ReadFull(r, body); err != nil {
				t.Fatal(err)
			}
			cases = append(cases, goldenCase{
				label:    strings.TrimSpace(strings.TrimPrefix(line, "----- ")),
				response: head.String() + string(body),
			})
		}
	}
}

func dialAndSend(addr, raw string) (net.Conn, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

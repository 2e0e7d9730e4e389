package gcemeta

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"credbroker/broker"
)

// TestGolden replays the requests of the transcripts captured from LUCI's
// server wherever this server behaves the same, and compares every byte
// but the Server header's value, the port, and the minimum lifetime the
// fake token core echoes (LUCI asked for 2 minutes, this server for 5).
func TestGolden(t *testing.T) {
	goldenAddr, cases := readGolden(t)
	same := map[string]bool{
		"GET /": true, "GET /computeMetadata": true, "GET /computeMetadata/": true,
		"GET /computeMetadata/v1/project/project-id":                                                                      true,
		"GET /computeMetadata/v1/project/numeric-project-id":                                                              true,
		"GET /computeMetadata/v1/project/numeric-project-id?alt=json":                                                     true,
		"GET /computeMetadata/v1/instance/name":                                                                           true,
		"GET /computeMetadata/v1/instance/zone":                                                                           true,
		"GET /computeMetadata/v1/instance/service-accounts":                                                               true,
		"GET /computeMetadata/v1/instance/service-accounts/":                                                              true,
		"GET /computeMetadata/v1/instance/service-accounts/default/":                                                      true,
		"GET /computeMetadata/v1/instance/service-accounts/default/?recursive=true":                                       true,
		"GET /computeMetadata/v1/instance/service-accounts/default/?recursive=true&alt=text":                              true,
		"GET /computeMetadata/v1/instance/service-accounts/default/?alt=json":                                             true,
		"GET /computeMetadata/v1/instance/service-accounts/default/email":                                                 true,
		"GET /computeMetadata/v1/instance/service-accounts/default/aliases":                                               true,
		"GET /computeMetadata/v1/instance/service-accounts/default/aliases?alt=json":                                      true,
		"GET /computeMetadata/v1/instance/service-accounts/default/scopes":                                                true,
		"GET /computeMetadata/v1/instance/service-accounts/default/scopes?alt=json":                                       true,
		"GET /computeMetadata/v1/instance/service-accounts/default/token":                                                 true,
		"GET /computeMetadata/v1/instance/service-accounts/sa-x@example.com/token?scopes=b,%20a,,b":                       true,
		"GET /computeMetadata/v1/instance/service-accounts/default/token?alt=text":                                        true,
		"GET /computeMetadata/v1/instance/service-accounts/default/identity":                                              true,
		"GET /computeMetadata/v1/instance/service-accounts/default/identity?audience=https://x&format=full&licenses=TRUE": true,
		"GET /computeMetadata/v1/instance/service-accounts/other@example.com/email":                                       true,
		"GET /computeMetadata/v1/instance/name?wait_for_change=true":                                                      true,
		"GET /computeMetadata/v1beta1/":                                                                                   true,
		"GET /computeMetadata/v1/instance/name/":                                                                          true,
		"GET /computeMetadata/v1/instance/?alt=text":                                                                      true,
		"POST": true,
	}
	_, info, _, _ := startFake(t, nil)
	matched := 0
	for _, c := range cases {
		if !same[c.label] {
			continue
		}
		matched++
		t.Run(c.label, func(t *testing.T) {
			var req string
			if c.label == "POST" {
				req = rawRequest("POST", "/computeMetadata/v1/instance/name", "Host: "+info.Addr, "Metadata-Flavor: Google", "Content-Length: 0")
			} else {
				req = get(info.Addr, strings.TrimPrefix(c.label, "GET "))
			}
			got := roundTrip(t, info.Addr, req)
			got = strings.ReplaceAll(got, "Server: Metadata Server for VM", "Server: Metadata Server for LUCI")
			got = strings.ReplaceAll(got, info.Addr, goldenAddr)
			got = strings.ReplaceAll(got, "lt="+MinTokenLifetime.String(), "lt=2m0s")
			if got != c.response {
				t.Errorf("response differs from the golden one\ngot:\n%s\nwant:\n%s", got, c.response)
			}
		})
	}
	if matched != len(same) {
		t.Errorf("matched %d golden cases, want %d: the golden file changed", matched, len(same))
	}
}

// TestWire covers what differs from LUCI's server or is new, with exact
// bytes.
func TestWire(t *testing.T) {
	_, info, _, _ := startFake(t, func(s *Server) {
		s.Accounts = append(s.Accounts, Account{ID: "other", Email: "other@example.com", Scopes: []string{"x"}})
	})
	addr := info.Addr
	const (
		v1 = "/computeMetadata/v1/"
		sa = v1 + "instance/service-accounts/"
	)
	saJSON := `{"aliases":["default"],"email":"sa-x@example.com","scopes":["s2","s1"]}`
	otherJSON := `{"aliases":[],"email":"other@example.com","scopes":["x"]}`
	accountsJSON := `{"default":` + saJSON + `,"other@example.com":` + otherJSON + `,"sa-x@example.com":` + saJSON + `}`
	v1JSON := `{"instance":{"attributes":{},"name":"vm","serviceAccounts":` + accountsJSON + `},` +
		`"project":{"attributes":{},"numericProjectId":0,"projectId":"none"},` +
		`"universe":{"universeDomain":"googleapis.com","universe_domain":"googleapis.com"}}`
	v1Text := "instance/name vm\n" +
		"instance/service-accounts/default/aliases default\n" +
		"instance/service-accounts/default/email sa-x@example.com\n" +
		"instance/service-accounts/default/scopes s2\n" +
		"instance/service-accounts/default/scopes s1\n" +
		"instance/service-accounts/other@example.com/email other@example.com\n" +
		"instance/service-accounts/other@example.com/scopes x\n" +
		"instance/service-accounts/sa-x@example.com/aliases default\n" +
		"instance/service-accounts/sa-x@example.com/email sa-x@example.com\n" +
		"instance/service-accounts/sa-x@example.com/scopes s2\n" +
		"instance/service-accounts/sa-x@example.com/scopes s1\n" +
		"project/numeric-project-id 0\n" +
		"project/project-id none\n" +
		"universe/universe-domain googleapis.com\n" +
		"universe/universe_domain googleapis.com\n"
	text := func(body string) string { return want("200 OK", "application/text", etagOf([]byte(body)), body) }
	jsonOK := func(body string) string { return want("200 OK", "application/json", etagOf([]byte(body)), body) }
	loc := func(path string) string {
		return want("301 Moved Permanently", "text/html", "", strings.SplitN(path, "?", 2)[0]+"\n", "Location: http://"+addr+path)
	}
	forbiddenFlavor := func(v string) string {
		return wantError("403 Forbidden", fmt.Sprintf("Bad Metadata-Flavor: got %q, want \"Google\"", v))
	}

	tests := []struct {
		name string
		req  string
		want string
	}{
		{"v1 listing", get(addr, v1), text("instance/\nproject/\nuniverse/\n")},
		{"project listing", get(addr, v1+"project/"), text("attributes/\nnumeric-project-id\nproject-id\n")},
		{"instance listing", get(addr, v1+"instance/"), text("attributes/\nname\nservice-accounts/\n")},
		{"empty attributes", get(addr, v1+"instance/attributes/"), text("")},
		{"project attributes", get(addr, v1+"project/attributes/"), text("")},
		{"empty attributes recursive", get(addr, v1+"project/attributes/?recursive=true"), jsonOK("{}")},
		{"missing attribute", get(addr, v1+"instance/attributes/ssh-keys"),
			wantError("404 Not Found", `Metadata directory "/computeMetadata/v1/instance/attributes" doesn't have "ssh-keys"`)},
		{"no instance id unless configured", get(addr, v1+"instance/id"),
			wantError("404 Not Found", `Metadata directory "/computeMetadata/v1/instance" doesn't have "id"`)},
		{"accounts listing", get(addr, sa), text("default/\nother@example.com/\nsa-x@example.com/\n")},
		{"accounts recursive keeps emails", get(addr, sa+"?recursive=true"), jsonOK(accountsJSON)},
		{"other account recursive", get(addr, sa+"other@example.com/?recursive=true"), jsonOK(otherJSON)},
		{"other account has no alias", get(addr, sa+"other@example.com/aliases"), text("\n")},
		{"other account email", get(addr, sa+"other@example.com/email"), text("other@example.com")},
		{"other account token", get(addr, sa+"other@example.com/token"),
			want("200 OK", "application/json", "", `{"access_token":"tok[x]lt=5m0s","expires_in":1799,"token_type":"Bearer"}`)},
		{"v1 recursive", get(addr, v1+"?recursive=true"), jsonOK(v1JSON)},
		{"v1 recursive text", get(addr, v1+"?recursive=true&alt=text"), text(v1Text)},
		{"v1 recursive yes", get(addr, v1+"?recursive=YES&alt=json"), jsonOK(v1JSON)},
		{"universe-domain", get(addr, v1+"universe/universe-domain"), text("googleapis.com")},
		{"universe_domain", get(addr, v1+"universe/universe_domain"), text("googleapis.com")},
		{"unknown alt ignored on a leaf", get(addr, v1+"instance/name?alt=xml"), text("vm")},
		{"identity alt=json", get(addr, sa+"default/identity?audience=a&alt=json"),
			want("200 OK", "application/json", "", `"idtok[a]lt=5m0s"`)},

		{"redirect keeps query", get(addr, v1+"instance?recursive=true"), loc(v1 + "instance/?recursive=true")},
		{"redirect ignores Host", rawRequest("GET", "/computeMetadata/v1/instance", "Host: metadata.google.internal", "Metadata-Flavor: Google"),
			loc(v1 + "instance/")},
		{"double slash is a missing child", get(addr, "/computeMetadata//v1/"),
			wantError("404 Not Found", `Metadata directory "/computeMetadata" doesn't have ""`)},
		{"dot dot is a missing child", get(addr, v1+"../v1/"),
			wantError("404 Not Found", `Metadata directory "/computeMetadata/v1" doesn't have ".."`)},
		{"root double slash", get(addr, "//"), wantError("404 Not Found", `Metadata directory "" doesn't have ""`)},
		{"root child missing", get(addr, "/nope"), wantError("404 Not Found", `Metadata directory "" doesn't have "nope"`)},
		{"through a leaf", get(addr, v1+"instance/name/x"),
			wantError("404 Not Found", `Metadata "/computeMetadata/v1/instance/name" can't be listed`)},

		{"root without flavor", rawRequest("GET", "/", "Host: "+addr), text("computeMetadata/\n")},
		{"recursive root needs flavor", rawRequest("GET", "/?recursive=true", "Host: "+addr), forbiddenFlavor("")},
		{"no flavor", rawRequest("GET", v1+"instance/name", "Host: "+addr), forbiddenFlavor("")},
		{"lowercase flavor", rawRequest("GET", v1+"instance/name", "Host: "+addr, "Metadata-Flavor: google"), forbiddenFlavor("google")},
		{"x-forwarded-for", get(addr, v1+"instance/name", "X-Forwarded-For: 1.2.3.4"),
			wantError("403 Forbidden", `Forbidden X-Forwarded-For header "1.2.3.4"`)},
		{"x-forwarded-for on root", rawRequest("GET", "/", "Host: "+addr, "X-Forwarded-For: 1.2.3.4"),
			wantError("403 Forbidden", `Forbidden X-Forwarded-For header "1.2.3.4"`)},
		{"head", rawRequest("HEAD", v1+"instance/name", "Host: "+addr, "Metadata-Flavor: Google"),
			strings.TrimSuffix(text("vm"), "vm")},
		{"put", rawRequest("PUT", v1+"instance/name", "Host: "+addr, "Metadata-Flavor: Google", "Content-Length: 0"),
			wantError("405 Method Not Allowed", "Method not allowed")},
		{"absolute-form target", rawRequest("GET", "http://"+addr+v1, "Host: "+addr, "Metadata-Flavor: Google"),
			wantError("400 Bad Request", "Request target must be a path")},
		{"origin", get(addr, v1, "Origin: http://evil.example"), wantError("403 Forbidden", "Requests from browsers are not allowed")},
		{"referer", get(addr, v1, "Referer: http://evil.example/"), wantError("403 Forbidden", "Requests from browsers are not allowed")},
		{"sec-fetch", get(addr, v1, "Sec-Fetch-Site: cross-site"), wantError("403 Forbidden", "Requests from browsers are not allowed")},
		{"bad timeout", get(addr, v1+"instance/name?wait_for_change=true&timeout_sec=soon"),
			wantError("400 Bad Request", "Invalid timeout_sec: want a non-negative number of seconds")},
		{"gcloud client id is served", get(addr, sa+"default/identity?audience="+gcloudClientID+"&format=standard&licenses=FALSE"),
			want("200 OK", "application/text", "", "idtok["+gcloudClientID+"]lt=5m0s")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := roundTrip(t, addr, tt.req); got != tt.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestInstanceLeaves(t *testing.T) {
	_, info, _, _ := startFake(t, func(s *Server) {
		s.InstanceID = "1234567890123"
		s.Hostname = "vm.c.proj.internal"
		s.Zone = "projects/123/zones/europe-west1-b"
		s.NumericProjectID = "123"
	})
	const inst = "/computeMetadata/v1/instance/"
	text := func(body string) string { return want("200 OK", "application/text", etagOf([]byte(body)), body) }
	tests := []struct{ path, want string }{
		{inst, text("attributes/\nhostname\nid\nname\nservice-accounts/\nzone\n")},
		{inst + "id", text("1234567890123")},
		{inst + "id?alt=json", want("200 OK", "application/json", etagOf([]byte("1234567890123")), "1234567890123")},
		{inst + "hostname", text("vm.c.proj.internal")},
		{inst + "zone", text("projects/123/zones/europe-west1-b")},
		{"/computeMetadata/v1/project/numeric-project-id", text("123")},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			if got := roundTrip(t, info.Addr, get(info.Addr, tt.path)); got != tt.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestHostHeader(t *testing.T) {
	_, info, _, _ := startFake(t, nil)
	p := strconv.Itoa(info.Port)
	tests := []struct {
		host string
		ok   bool
	}{
		{"127.0.0.1:" + p, true},
		{"localhost:" + p, true},
		{"LOCALHOST:" + p, true},
		{"[::1]:" + p, true},
		{"metadata.google.internal", true},
		{"metadata.google.internal:" + p, true},
		{"metadata", true},
		{"169.254.169.254", true},
		{"169.254.169.254:" + p, true},
		{"127.0.0.1", false},
		{"localhost:1", false},
		{"metadata:" + p, false},
		{"metadata.google.internal:1", false},
		{"169.254.169.254:81", false},
		{"evil.example", false},
		{"evil.example:" + p, false},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			got := roundTrip(t, info.Addr, rawRequest("GET", "/computeMetadata/v1/instance/name", "Host: "+tt.host, "Metadata-Flavor: Google"))
			w := want("200 OK", "application/text", etagOf([]byte("vm")), "vm")
			if !tt.ok {
				w = wantError("403 Forbidden", fmt.Sprintf("Forbidden Host header %q", tt.host))
			}
			if got != w {
				t.Errorf("got:\n%s\nwant:\n%s", got, w)
			}
		})
	}
}

func TestTokenRequests(t *testing.T) {
	const sa = "/computeMetadata/v1/instance/service-accounts/"
	tests := []struct {
		name       string
		path       string
		wantScopes []string
		wantAud    string
	}{
		{"default scopes as configured", sa + "default/token", []string{"s2", "s1"}, ""},
		{"scopes sorted and deduplicated", sa + "default/token?scopes=b,%20a,,b", []string{"a", "b"}, ""},
		{"scopes separated by spaces", sa + "default/token?scopes=b+a", []string{"a", "b"}, ""},
		{"escaped commas", sa + "sa-x@example.com/token?scopes=https%3A%2F%2Fx%2Cc", []string{"c", "https://x"}, ""},
		{"empty scopes mean defaults", sa + "default/token?scopes=,,", []string{"s2", "s1"}, ""},
		{"first scopes value wins", sa + "default/token?scopes=a&scopes=b", []string{"a"}, ""},
		{"escaped audience", sa + "default/identity?audience=https%3A%2F%2Fx.example%2Fp", nil, "https://x.example/p"},
		{"unescaped audience last", sa + "default/identity?format=full&audience=https://x.example/p?a=b&c=d", nil, "https://x.example/p?a=b&c=d"},
		{"unescaped audience first", sa + "default/identity?audience=https://x.example/p?a=b&format=full&licenses=TRUE", nil, "https://x.example/p?a=b"},
		{"plus kept in audience", sa + "default/identity?audience=a+b", nil, "a+b"},
		{"bad escape kept", sa + "default/identity?audience=100%zz", nil, "100%zz"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, info, ft, _ := startFake(t, nil)
			got := roundTrip(t, info.Addr, get(info.Addr, tt.path))
			if !strings.HasPrefix(got, "HTTP/1.1 200 OK\n") {
				t.Fatalf("got:\n%s", got)
			}
			if tt.wantAud != "" {
				if a := ft.lastAudience(); a != tt.wantAud {
					t.Errorf("audience = %q, want %q", a, tt.wantAud)
				}
			} else if s := ft.lastScopes(); !slices.Equal(s, tt.wantScopes) {
				t.Errorf("scopes = %q, want %q", s, tt.wantScopes)
			}
			if ft.accounts[0] != "sa" || ft.lifetimes[0] != MinTokenLifetime {
				t.Errorf("asked account %q lifetime %v, want sa, %v", ft.accounts[0], ft.lifetimes[0], MinTokenLifetime)
			}
		})
	}
}

func TestTokenErrors(t *testing.T) {
	const sa = "/computeMetadata/v1/instance/service-accounts/default/"
	tests := []struct {
		name      string
		err       error
		expiresIn time.Duration
		path      string
		want      string
	}{
		{"transient", broker.Transientf("upstream said 503"), 0, "token",
			wantError("500 Internal Server Error", "failed to mint the token: upstream said 503")},
		{"unknown account", broker.NewFatal(fmt.Errorf("account x: %w", broker.ErrUnknownAccount)), 0, "token",
			wantError("404 Not Found", "failed to mint the token: account x: unknown account")},
		{"not supported", broker.NewFatal(fmt.Errorf("ID tokens: %w", broker.ErrNotSupported)), 0, "identity?audience=a",
			wantError("400 Bad Request", "failed to mint the token: ID tokens: not supported by this credential")},
		{"fatal", broker.Fatalf("credential revoked"), 0, "token",
			wantError("403 Forbidden", "failed to mint the token: credential revoked")},
		{"unclassified is fatal", errors.New("odd\nfailure"), 0, "token",
			wantError("403 Forbidden", "failed to mint the token: odd failure")},
		{"cancelled is transient", context.Canceled, 0, "token",
			wantError("500 Internal Server Error", "failed to mint the token: context canceled")},
		{"never expires_in 0", nil, 999 * time.Millisecond, "token",
			wantError("500 Internal Server Error", "failed to mint the token: token core returned an expired token")},
		{"one second left is 1", nil, time.Second, "token",
			want("200 OK", "application/json", "", `{"access_token":"tok[s2,s1]lt=5m0s","expires_in":1,"token_type":"Bearer"}`)},
		{"gcloud client id failure is 404", broker.Fatalf("no ID tokens here"), 0, "identity?audience=" + gcloudClientID,
			wantError("404 Not Found", "No ID token for gcloud's client id from this account")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, info, ft, _ := startFake(t, nil)
			ft.err, ft.expiresIn = tt.err, tt.expiresIn
			if got := roundTrip(t, info.Addr, get(info.Addr, sa+tt.path)); got != tt.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestWaitForChange(t *testing.T) {
	const name = "/computeMetadata/v1/instance/name"
	nameTag := etagOf([]byte("vm"))
	tests := []struct {
		name    string
		path    string
		maxWait time.Duration
		want    []time.Duration // waits started
	}{
		{"no wait without the flag", name, 0, nil},
		{"stale etag answers at once", name + "?wait_for_change=true&last_etag=0000", 0, nil},
		{"current etag waits the maximum", name + "?wait_for_change=true&last_etag=" + nameTag, 0, []time.Duration{DefaultMaxWait}},
		{"no etag waits", name + "?wait_for_change=true", 0, []time.Duration{DefaultMaxWait}},
		{"timeout_sec", name + "?wait_for_change=true&last_etag=" + nameTag + "&timeout_sec=30", 0, []time.Duration{30 * time.Second}},
		{"timeout_sec bounded", name + "?wait_for_change=true&timeout_sec=100000", 0, []time.Duration{DefaultMaxWait}},
		{"configured bound", name + "?wait_for_change=true&timeout_sec=100", time.Minute, []time.Duration{time.Minute}},
		{"recursive listing waits", "/computeMetadata/v1/?recursive=true&wait_for_change=true", 0, []time.Duration{DefaultMaxWait}},
		{"token never waits", "/computeMetadata/v1/instance/service-accounts/default/token?wait_for_change=true", 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, info, _, w := startFake(t, func(s *Server) { s.MaxWait = tt.maxWait })
			got := roundTrip(t, info.Addr, get(info.Addr, tt.path))
			if !strings.HasPrefix(got, "HTTP/1.1 200 OK\n") {
				t.Fatalf("got:\n%s", got)
			}
			if d := w.durations(); !slices.Equal(d, tt.want) {
				t.Errorf("waits = %v, want %v", d, tt.want)
			}
		})
	}
}

// TestCloseEndsWaits checks that Close ends a request held by
// wait_for_change and every other connection.
func TestCloseEndsWaits(t *testing.T) {
	s, info, _, w := startFake(t, nil)
	w.fire = false
	w.started = make(chan struct{}, 1)
	done := make(chan string, 1)
	go func() {
		done <- roundTripNoFatal(info.Addr, get(info.Addr, "/computeMetadata/v1/instance/name?wait_for_change=true"))
	}()
	<-w.started
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := <-done; strings.Contains(got, "200 OK") {
		t.Errorf("a held request was answered after Close: %q", got)
	}
}

func roundTripNoFatal(addr, raw string) string {
	var b strings.Builder
	c, err := dialAndSend(addr, raw)
	if err != nil {
		return err.Error()
	}
	defer c.Close()
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			return b.String()
		}
	}
}

func TestLifecycle(t *testing.T) {
	s := &Server{}
	if err := s.Close(); err != nil {
		t.Fatalf("Close before Start: %v", err)
	}
	if _, err := s.Start(context.Background()); err == nil {
		t.Fatal("Start after Close succeeded")
	}

	s = &Server{}
	info, err := s.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.Addr != "127.0.0.1:"+strconv.Itoa(info.Port) || info.Port == 0 {
		t.Errorf("Info = %+v", info)
	}
	if _, err := s.Start(context.Background()); err == nil {
		t.Error("second Start succeeded")
	}
	// An idle keep-alive connection must not survive Close.
	c, err := dialAndSend(info.Addr, "GET / HTTP/1.1\r\nHost: "+info.Addr+"\r\n\r\n")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 4096)
	if _, err := c.Read(buf); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := c.Read(buf); err == nil {
		t.Errorf("connection still open after Close, read %q", buf[:n])
	}

	want := []string{
		"GCE_METADATA_HOST=" + info.Addr,
		"GCE_METADATA_IP=" + info.Addr,
		"GCE_METADATA_ROOT=" + info.Addr,
		"METADATA_SERVER_DETECTION=assume-present",
	}
	if got := info.Env(); !slices.Equal(got, want) {
		t.Errorf("Env() = %q, want %q", got, want)
	}
}

func TestStartValidation(t *testing.T) {
	ft := &fakeTokens{}
	acct := func(id, email string) Account { return Account{ID: id, Email: email} }
	tests := []struct {
		name string
		s    *Server
		want string
	}{
		{"numeric project id", &Server{NumericProjectID: "12a"}, `gcemeta: numeric project id "12a" is not all digits`},
		{"instance id", &Server{InstanceID: "-1"}, `gcemeta: instance id "-1" is not all digits`},
		{"no tokens", &Server{Accounts: []Account{acct("a", "a@x")}}, "gcemeta: accounts given without Tokens"},
		{"empty id", &Server{Tokens: ft, Accounts: []Account{acct("", "a@x")}}, "gcemeta: account with an empty id"},
		{"no email", &Server{Tokens: ft, Accounts: []Account{acct("a", "")}}, `gcemeta: account "a": unusable email ""`},
		{"email default", &Server{Tokens: ft, Accounts: []Account{acct("a", "default")}}, `gcemeta: account "a": unusable email "default"`},
		{"email slash", &Server{Tokens: ft, Accounts: []Account{acct("a", "a/b@x")}}, `gcemeta: account "a": unusable email "a/b@x"`},
		{"same id", &Server{Tokens: ft, Accounts: []Account{acct("a", "a@x"), acct("a", "b@x")}}, `gcemeta: account "a" given twice`},
		{"same email", &Server{Tokens: ft, Accounts: []Account{acct("a", "a@x"), acct("b", "a@x")}}, `gcemeta: email "a@x" given twice`},
		{"unknown default", &Server{Tokens: ft, Accounts: []Account{acct("a", "a@x")}, DefaultAccount: "b"}, `gcemeta: default account "b" is not among the accounts`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.s.Start(context.Background())
			if err == nil {
				tt.s.Close()
				t.Fatal("Start succeeded")
			}
			if err.Error() != tt.want {
				t.Errorf("err = %q, want %q", err, tt.want)
			}
		})
	}
}

func TestDefaultAccountChoice(t *testing.T) {
	_, info, ft, _ := startFake(t, func(s *Server) {
		s.Accounts = append(s.Accounts, Account{ID: "b", Email: "b@example.com"})
		s.DefaultAccount = "b"
	})
	const sa = "/computeMetadata/v1/instance/service-accounts/"
	body := `{"aliases":["default"],"email":"b@example.com","scopes":[]}`
	if got, w := roundTrip(t, info.Addr, get(info.Addr, sa+"default/?recursive=true")),
		want("200 OK", "application/json", etagOf([]byte(body)), body); got != w {
		t.Errorf("got:\n%s\nwant:\n%s", got, w)
	}
	roundTrip(t, info.Addr, get(info.Addr, sa+"default/token"))
	if ft.accounts[0] != "b" || len(ft.scopes[0]) != 0 {
		t.Errorf("token asked for account %q scopes %q, want b and none", ft.accounts[0], ft.scopes[0])
	}
}

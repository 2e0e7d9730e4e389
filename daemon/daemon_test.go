package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"credbroker/authtoken"
	"credbroker/lucictx"
	"credbroker/protocols/localauth"
)

func TestCreateListShowRevoke(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	luciParent := filepath.Join(t.TempDir(), "parent.json")
	os.WriteFile(luciParent, []byte(`{"realm":{"name":"proj:realm"}}`), 0o600)
	created := h.create(t, CreateRequest{
		TTL: "1h", Stale: "10m", Accounts: []string{"task", "other"}, Frontends: allFrontends(),
		Env: []string{"HOME=/nonexistent", "LUCI_CONTEXT=" + luciParent, "GOOGLE_APPLICATION_CREDENTIALS=/k.json", "SECRET_THING=x"},
	})
	if created.Status != "issued" || !authtoken.ValidPublicID(created.ID) {
		t.Fatalf("created %+v", created.Info)
	}
	if id, _, err := authtoken.ParseCredential(created.Token); err != nil || id != created.ID {
		t.Fatalf("token does not parse as the session's credential: %v", err)
	}
	for _, name := range []string{"LUCI_CONTEXT", "GCE_METADATA_HOST", "DEVSHELL_CLIENT_PORT", "BOTO_CONFIG", "CLOUDSDK_CONFIG", EnvSession, EnvSessionToken} {
		if envOf(created, name) == "" {
			t.Errorf("%s not set", name)
		}
	}
	if envOf(created, EnvSessionToken) != created.Token || envOf(created, EnvSession) != created.ID {
		t.Error("session variables do not name the session")
	}
	if !slices.Contains(created.Unset, "GOOGLE_APPLICATION_CREDENTIALS") || !slices.Contains(created.Unset, "NO_GCE_CHECK") {
		t.Errorf("unset = %v", created.Unset)
	}

	// The LUCI_CONTEXT works with the session token as local_auth's
	// secret, and keeps the parent's other sections.
	lc, _, err := lucictx.Load(envOf(created, "LUCI_CONTEXT"))
	if err != nil {
		t.Fatal(err)
	}
	la, err := lc.LocalAuth()
	if err != nil {
		t.Fatal(err)
	}
	_, value, _ := authtoken.ParseCredential(created.Token)
	if string(la.Secret) != value {
		t.Error("local_auth's secret is not the session token")
	}
	data, _ := os.ReadFile(envOf(created, "LUCI_CONTEXT"))
	if !bytes.Contains(data, []byte("proj:realm")) {
		t.Errorf("the parent's realm section was dropped: %s", data)
	}
	cl, err := localauth.NewClient(la)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.AccessToken(ctx, []string{"scope-a"}, time.Minute); err != nil {
		t.Fatalf("local_auth: %v", err)
	}
	if code, err := metaToken(envOf(created, "GCE_METADATA_HOST")); err != nil || code != 200 {
		t.Fatalf("metadata token: %d, %v", code, err)
	}

	// A failing session shows up with its reason.
	if _, err := h.c.Create(ctx, CreateRequest{Accounts: []string{"nobody"}, Scopes: []string{"s"}, Frontends: allFrontends()}); err == nil || !strings.Contains(err.Error(), "not served") {
		t.Errorf("unknown account: %v", err)
	}

	list, err := h.c.List(ctx, ListQuery{})
	if err != nil || len(list) != 1 || list[0].ID != created.ID || !list[0].Running {
		t.Fatalf("list = %+v, %v", list, err)
	}
	shown, err := h.c.Show(ctx, created.ID)
	if err != nil || shown.Status != "issued" || shown.Stale != "10m0s" || !slices.Equal(shown.Accounts, []string{"task", "other"}) {
		t.Fatalf("show = %+v, %v", shown, err)
	}
	dir := shown.Dir
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("session directory: %v", err)
	}

	if err := h.c.Revoke(ctx, created.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := h.c.Show(ctx, created.ID); !isStatus(err, http.StatusNotFound) {
		t.Errorf("show after revoke: %v", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("session directory left after revoke: %v", err)
	}
	if _, err := metaToken(envOf(created, "GCE_METADATA_HOST")); err == nil {
		t.Error("metadata server still answers after revoke")
	}
	if err := h.c.Revoke(ctx, created.ID); !isStatus(err, http.StatusNotFound) {
		t.Errorf("second revoke: %v", err)
	}
}

func isStatus(err error, status int) bool {
	var se *ServerError
	return errors.As(err, &se) && se.Status == status
}

func TestBearerLimitedToOwnSession(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	a := h.create(t, CreateRequest{Frontends: Frontends{LocalAuth: true}})
	b := h.create(t, CreateRequest{Frontends: Frontends{LocalAuth: true}})
	self := NewClient(h.paths.Socket())
	self.Bearer = a.Token
	if in, err := self.Show(ctx, a.ID); err != nil || in.ID != a.ID {
		t.Errorf("show own session: %v", err)
	}
	if _, err := self.Show(ctx, b.ID); !isStatus(err, http.StatusForbidden) {
		t.Errorf("show another session: %v", err)
	}
	if _, err := self.List(ctx, ListQuery{}); !isStatus(err, http.StatusForbidden) {
		t.Errorf("list with a session token: %v", err)
	}
	bad := NewClient(h.paths.Socket())
	bad.Bearer = b.Token[:len(b.Token)-2] + "zz"
	if _, err := bad.Show(ctx, b.ID); !isStatus(err, http.StatusUnauthorized) {
		t.Errorf("wrong token: %v", err)
	}
	if err := self.Revoke(ctx, a.ID); err != nil {
		t.Errorf("revoke own session: %v", err)
	}
	if _, err := self.Show(ctx, a.ID); !isStatus(err, http.StatusUnauthorized) {
		t.Errorf("token of a revoked session: %v", err)
	}
}

// TestRevokeDuringKeepAlive holds one connection to the metadata server:
// the request before the revoke is served, the next one on the same
// connection is not.
func TestRevokeDuringKeepAlive(t *testing.T) {
	h := newHarness(t)
	created := h.create(t, CreateRequest{Frontends: Frontends{GCEMeta: true}})
	addr := envOf(created, "GCE_METADATA_HOST")
	k := dialKeepAlive(t, addr)
	if code, err := k.get(addr); err != nil || code != 200 {
		t.Fatalf("before revoke: %d, %v", code, err)
	}
	if err := h.c.Revoke(context.Background(), created.ID); err != nil {
		t.Fatal(err)
	}
	if code, err := k.get(addr); err == nil {
		t.Fatalf("after revoke the same connection answered %d", code)
	}
}

func TestExpiryAndStaleness(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	short := h.create(t, CreateRequest{TTL: "1h", Frontends: Frontends{GCEMeta: true}})
	stale := h.create(t, CreateRequest{TTL: "8h", Stale: "10m", Frontends: Frontends{GCEMeta: true}})
	used := h.create(t, CreateRequest{TTL: "8h", Stale: "10m", Frontends: Frontends{GCEMeta: true}})

	step := func(d time.Duration) {
		h.clock.Add(d)
		if code, err := metaToken(envOf(used, "GCE_METADATA_HOST")); err != nil || code != 200 {
			t.Fatalf("using a live session: %d, %v", code, err)
		}
		h.d.Sweep(ctx)
	}
	step(5 * time.Minute)
	step(5 * time.Minute) // stale's last use is 10 minutes ago now
	if _, err := h.c.Show(ctx, stale.ID); !isStatus(err, http.StatusNotFound) {
		t.Errorf("stale session still there: %v", err)
	}
	if _, err := metaToken(envOf(stale, "GCE_METADATA_HOST")); err == nil {
		t.Error("stale session's server still answers")
	}
	for range 6 {
		step(9 * time.Minute) // 64 minutes in all: past short's hour
	}
	if _, err := h.c.Show(ctx, short.ID); !isStatus(err, http.StatusNotFound) {
		t.Errorf("expired session still there: %v", err)
	}
	if in, err := h.c.Show(ctx, used.ID); err != nil || !in.Running {
		t.Errorf("used session: %+v, %v", in, err)
	}
}

func TestRestartKeepsSessions(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	created := h.create(t, CreateRequest{Frontends: allFrontends(), Env: []string{"HOME=/nonexistent"}})
	lcPath := envOf(created, "LUCI_CONTEXT")
	botoPath := envOf(created, "BOTO_CONFIG")
	metaAddr := envOf(created, "GCE_METADATA_HOST")
	lc, _, err := lucictx.Load(lcPath)
	if err != nil {
		t.Fatal(err)
	}
	la, _ := lc.LocalAuth()

	h.stop(t)
	orphan := filepath.Join(h.paths.SessionsDir(), "at_0rphan0000")
	if err := os.Mkdir(orphan, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := metaToken(metaAddr); err == nil {
		t.Fatal("metadata server answers while the daemon is down")
	}
	if _, err := os.Stat(lcPath); err != nil {
		t.Fatalf("session files removed by a shutdown: %v", err)
	}
	h.start(t)

	// A child that read LUCI_CONTEXT before the restart keeps its port
	// and secret.
	cl, err := localauth.NewClient(la)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.AccessToken(ctx, []string{"scope-a"}, time.Minute); err != nil {
		t.Fatalf("local_auth after restart: %v", err)
	}
	if code, err := metaToken(metaAddr); err != nil || code != 200 {
		t.Fatalf("metadata after restart: %d, %v", code, err)
	}
	// gsutil started before the restart reads the .boto path it was given.
	if code, err := botoToken(botoPath); err != nil || code != 200 {
		t.Fatalf("gsutil's token endpoint through the old .boto path: %d, %v", code, err)
	}
	in, err := h.c.Show(ctx, created.ID)
	if err != nil || in.Status != "issued" || !in.Running {
		t.Fatalf("after restart: %+v, %v", in, err)
	}
	if _, err := os.Stat(orphan); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a directory no session owns survived the restart: %v", err)
	}
	// The bearer still works: it is the same token.
	self := NewClient(h.paths.Socket())
	self.Bearer = created.Token
	if err := self.Revoke(ctx, created.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(lcPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("files left after revoke: %v", err)
	}
}

func TestRestartPortTakenMarksFailed(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	created := h.create(t, CreateRequest{Frontends: Frontends{GCEMeta: true}})
	addr := envOf(created, "GCE_METADATA_HOST")
	h.stop(t)
	// Something else takes the port while the daemon is down.
	ln, err := listenTCP(addr)
	if err != nil {
		t.Skipf("cannot take the port back for the test: %v", err)
	}
	defer ln.Close()
	h.start(t)
	in, err := h.c.Show(ctx, created.ID)
	if err != nil || in.Status != "failed" || !strings.Contains(in.Reason, "restart") || in.Running {
		t.Fatalf("session after a restart that could not bring it back: %+v, %v", in, err)
	}
}

func TestWrongKeyFailsCleanly(t *testing.T) {
	h := newHarness(t)
	h.create(t, CreateRequest{Frontends: Frontends{LocalAuth: true}})
	h.stop(t)
	_, err := New(context.Background(), Options{Paths: h.paths, Key: bytes.Repeat([]byte{7}, 32), Broker: h.b, Logger: quietLogger()})
	if err == nil || !strings.Contains(err.Error(), "key") {
		t.Fatalf("New with another key: %v", err)
	}
	if strings.Contains(err.Error(), string(h.key)) {
		t.Error("the error shows the key")
	}
}

// TestNothingSecretAtRest scans the database, its WAL and the audit log
// for the session token and every token issued.
func TestNothingSecretAtRest(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	created := h.create(t, CreateRequest{Frontends: Frontends{LocalAuth: true, GCEMeta: true}})
	_, value, _ := authtoken.ParseCredential(created.Token)
	lc, _, _ := lucictx.Load(envOf(created, "LUCI_CONTEXT"))
	la, _ := lc.LocalAuth()
	cl, _ := localauth.NewClient(la)
	tok, err := cl.AccessToken(ctx, []string{"scope-a"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	h.stop(t)
	h.start(t) // the restore reads the sealed token back
	h.stop(t)
	files, _ := filepath.Glob(filepath.Join(h.paths.State, "*"))
	if len(files) < 2 {
		t.Fatalf("state files: %v", files)
	}
	secrets := map[string]string{"session token": value, "access token": tok.Value, "key": string(h.key)}
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for what, s := range secrets {
			if bytes.Contains(data, []byte(s)) {
				t.Errorf("%s holds the %s in clear", filepath.Base(p), what)
			}
		}
		if info, _ := os.Stat(p); info.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v", filepath.Base(p), info.Mode().Perm())
		}
	}
	audit, _ := os.ReadFile(h.paths.AuditLog())
	if !bytes.Contains(audit, []byte(`"event":"issue"`)) || !bytes.Contains(audit, []byte(`"frontend":"local_auth"`)) {
		t.Errorf("audit log has no issuance: %s", audit)
	}
	// Each issuance names the local user whose process asked.
	for _, line := range bytes.Split(bytes.TrimSpace(audit), []byte("\n")) {
		var e AuditEntry
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		if e.Event == "issue" && (e.PeerUID == nil || *e.PeerUID != int64(os.Getuid())) {
			t.Errorf("issuance without the peer's uid: %s", line)
		}
	}
}

func TestMetricsAndStatus(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	created := h.create(t, CreateRequest{Frontends: Frontends{GCEMeta: true}})
	for range 3 {
		if code, err := metaToken(envOf(created, "GCE_METADATA_HOST")); err != nil || code != 200 {
			t.Fatal(code, err)
		}
	}
	text, err := h.c.Metrics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"# TYPE credbroker_requests_total counter\n",
		`credbroker_requests_total{frontend="gcemeta"} 3` + "\n",
		`credbroker_request_errors_total{frontend="gcemeta"} 0` + "\n",
		`credbroker_request_duration_seconds_bucket{frontend="gcemeta",le="+Inf"} 3` + "\n",
		`credbroker_request_duration_seconds_count{frontend="gcemeta"} 3` + "\n",
		"credbroker_mints_total 1\n",
		"credbroker_cache_hits_total 2\n",
		`credbroker_sessions{status="issued"} 1` + "\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %q:\n%s", want, text)
		}
	}
	st, err := h.c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Frontends["gcemeta"].Requests != 3 || len(st.Sessions) != 1 || st.Cache.Mints != 1 {
		t.Errorf("status = %+v", st)
	}
}

// TestOwnerOnlyOnSecretlessFrontends gives a session to another uid: this
// process is then a stranger to its metadata and devshell servers.
func TestOwnerOnlyOnSecretlessFrontends(t *testing.T) {
	h := newHarness(t)
	other := Peer{UID: uint32(os.Getuid() + 1)}
	created, err := h.d.Create(context.Background(), other, CreateRequest{Scopes: []string{"s"}, Frontends: Frontends{GCEMeta: true, Devshell: true}})
	if err != nil {
		t.Fatal(err)
	}
	if code, err := metaToken(envOf(created, "GCE_METADATA_HOST")); err == nil && code == 200 {
		t.Error("metadata served a uid that does not own the session")
	}
	if got := devshellAnswer(t, "127.0.0.1:"+envOf(created, "DEVSHELL_CLIENT_PORT")); strings.Contains(got, "ya29") || !strings.Contains(got, "not allowed") {
		t.Errorf("devshell answered a uid that does not own the session: %q", got)
	}
	mine := h.create(t, CreateRequest{Frontends: Frontends{GCEMeta: true, Devshell: true}})
	if code, err := metaToken(envOf(mine, "GCE_METADATA_HOST")); err != nil || code != 200 {
		t.Errorf("metadata refused the owner: %d, %v", code, err)
	}
	if got := devshellAnswer(t, "127.0.0.1:"+envOf(mine, "DEVSHELL_CLIENT_PORT")); !strings.Contains(got, "ya29.fake") {
		t.Errorf("devshell to the owner: %q", got)
	}
}

// TestStartFailureMarksSessionFailed makes the session's start fail (its
// directory cannot be made): the session is recorded as failed with the
// reason, and nothing of it keeps running.
func TestStartFailureMarksSessionFailed(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	if err := os.RemoveAll(h.paths.SessionsDir()); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(h.paths.SessionsDir(), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := h.c.Create(ctx, CreateRequest{Scopes: []string{"s"}, Frontends: allFrontends()})
	if err == nil || !strings.Contains(err.Error(), "failed") {
		t.Fatalf("create: %v", err)
	}
	list, err := h.c.List(ctx, ListQuery{Statuses: []string{"failed"}})
	if err != nil || len(list) != 1 {
		t.Fatalf("failed sessions: %+v, %v", list, err)
	}
	if s := list[0]; s.Running || !strings.Contains(s.Reason, "session directory") {
		t.Errorf("failed session: %+v", s)
	}
	if err := h.c.Revoke(ctx, list[0].ID); err != nil {
		t.Errorf("removing a failed session: %v", err)
	}
}

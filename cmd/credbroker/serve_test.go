package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"credbroker/authtoken"
	"credbroker/daemon"
)

// testDaemon is a `credbroker serve --dev` subprocess with its own
// runtime, state and config directories.
type testDaemon struct {
	tmp  string
	env  []string
	cmd  *exec.Cmd
	done chan struct{}
}

func startDaemon(t *testing.T) *testDaemon {
	t.Helper()
	// Short paths: a unix socket's path must fit in 108 bytes.
	root, err := os.MkdirTemp("", "cbd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	run := filepath.Join(root, "run")
	if err := os.Mkdir(run, 0o700); err != nil {
		t.Fatal(err)
	}
	d := &testDaemon{tmp: root, env: []string{
		"XDG_RUNTIME_DIR=" + run,
		"XDG_STATE_HOME=" + filepath.Join(root, "state"),
		"XDG_CONFIG_HOME=" + filepath.Join(root, "config"),
	}}
	d.start(t)
	return d
}

func (d *testDaemon) start(t *testing.T) {
	t.Helper()
	d.cmd = brokerCmd(t, d.tmp, d.env, "serve", "--dev", "--log-level", "info")
	logf, err := os.OpenFile(filepath.Join(d.tmp, "serve.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logf.Close()
	d.done = make(chan struct{})
	cmd, done := d.cmd, d.done
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-done })
	// Ready when the socket answers.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if r := runBroker(t, d.tmp, d.env, "status", "--json"); r.code == 0 {
			return
		}
		select {
		case <-done:
			log, _ := os.ReadFile(filepath.Join(d.tmp, "serve.log"))
			t.Fatalf("the daemon exited: %s", log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the daemon did not come up")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (d *testDaemon) stop(t *testing.T) {
	t.Helper()
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(30 * time.Second):
		t.Fatal("the daemon did not stop on SIGTERM")
	}
	if code := d.cmd.ProcessState.ExitCode(); code != 0 {
		log, _ := os.ReadFile(filepath.Join(d.tmp, "serve.log"))
		t.Fatalf("daemon exit status %d: %s", code, log)
	}
}

func (d *testDaemon) cli(t *testing.T, args ...string) result {
	t.Helper()
	return runBroker(t, d.tmp, d.env, args...)
}

func (d *testDaemon) mustCLI(t *testing.T, args ...string) string {
	t.Helper()
	r := d.cli(t, args...)
	if r.code != 0 {
		t.Fatalf("credbroker %s: exit %d: %s", strings.Join(args, " "), r.code, r.stderr)
	}
	return r.stdout
}

func TestDaemonSessionCommands(t *testing.T) {
	d := startDaemon(t)
	var created daemon.Created
	if err := json.Unmarshal([]byte(d.mustCLI(t, "session", "create", "--json", "--ttl", "1h", "--stale", "30m", "--no-gsutil")), &created); err != nil {
		t.Fatal(err)
	}
	if id, _, err := authtoken.ParseCredential(created.Token); err != nil || id != created.ID || created.Status != "issued" {
		t.Fatalf("created: %+v, %v", created.Info, err)
	}

	list := d.mustCLI(t, "session", "list")
	lines := strings.Split(strings.TrimSpace(list), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "ID ") || !strings.HasPrefix(lines[1], created.ID+"  issued  ") ||
		!strings.HasSuffix(lines[1], "local_auth,gcemeta,devshell") {
		t.Errorf("session list:\n%s", list)
	}
	var infos []daemon.Info
	if err := json.Unmarshal([]byte(d.mustCLI(t, "session", "list", "--json", "--status", "issued")), &infos); err != nil || len(infos) != 1 {
		t.Errorf("session list --json: %v %v", infos, err)
	}
	if out := d.mustCLI(t, "session", "list", "--json", "--status", "failed"); strings.TrimSpace(out) != "[]" {
		t.Errorf("failed sessions: %s", out)
	}
	show := d.mustCLI(t, "session", "show", created.ID)
	for _, want := range []string{"id:               " + created.ID + "\n", "status:           issued\n", "stale after:      30m0s\n", "accounts:         task\n"} {
		if !strings.Contains(show, want) {
			t.Errorf("session show lacks %q:\n%s", want, show)
		}
	}
	if strings.Contains(show, created.Token) || strings.Contains(d.mustCLI(t, "session", "show", "--json", created.ID), created.Token) {
		t.Error("session show prints the token")
	}
	if out := d.mustCLI(t, "session", "revoke", created.ID); out != "revoked "+created.ID+"\n" {
		t.Errorf("revoke printed %q", out)
	}
	if r := d.cli(t, "session", "show", created.ID); r.code != exitError || !strings.Contains(r.stderr, "no such session") {
		t.Errorf("show after revoke: %d %s", r.code, r.stderr)
	}
	status := d.mustCLI(t, "status")
	if !strings.Contains(status, "token cache:") || !strings.Contains(status, "0 session(s)") {
		t.Errorf("status:\n%s", status)
	}
	log, _ := os.ReadFile(filepath.Join(d.tmp, "serve.log"))
	if strings.Contains(string(log), created.Token[len(created.ID)+1:]) {
		t.Error("the daemon logged the session token")
	}
}

// writeWrapper makes a `credbroker` command that runs the test binary as
// the broker, for shell scripts.
func writeWrapper(t *testing.T, dir string) {
	t.Helper()
	script := "#!/bin/sh\nexec env " + roleVar + "=broker '" + os.Args[0] + "' \"$@\"\n"
	if err := os.WriteFile(filepath.Join(dir, "credbroker"), []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
}

// TestDaemonEvalAndRestart evals `session create` in a shell, gets a token
// through LUCI_CONTEXT, lets the daemon restart under it, and gets one
// again with the environment read before the restart.
func TestDaemonEvalAndRestart(t *testing.T) {
	for _, sh := range []string{"bash", "zsh"} {
		t.Run(sh, func(t *testing.T) {
			shell, err := exec.LookPath(sh)
			if err != nil {
				t.Skipf("%s is not installed", sh)
			}
			d := startDaemon(t)
			bin, out := t.TempDir(), t.TempDir()
			writeWrapper(t, bin)
			script := `set -e
eval "$(credbroker session create --no-gsutil)"
env ` + roleVar + `=luci-client "$TESTBIN" > "$OUT/before"
echo "$CREDBROKER_SESSION" > "$OUT/id.tmp"; mv "$OUT/id.tmp" "$OUT/id"
while [ ! -f "$OUT/go" ]; do sleep 0.02; done
env ` + roleVar + `=luci-client "$TESTBIN" > "$OUT/after"
credbroker session revoke
`
			cmd := exec.Command(shell, "-c", script)
			cmd.Env = append(append(cleanTestEnv(), d.env...), "PATH="+bin+":"+os.Getenv("PATH"), "OUT="+out, "TESTBIN="+os.Args[0], "TMPDIR="+d.tmp)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			go func() { cmd.Wait(); close(done) }()
			t.Cleanup(func() { cmd.Process.Kill(); <-done })
			id := strings.TrimSpace(string(waitForFile(t, filepath.Join(out, "id"), done)))

			d.stop(t)
			d.start(t)
			os.WriteFile(filepath.Join(out, "go"), nil, 0o600)
			<-done
			if code := cmd.ProcessState.ExitCode(); code != 0 {
				t.Fatalf("shell exit %d: %s", code, stderr.String())
			}
			for _, f := range []string{"before", "after"} {
				var got struct{ Token, Email string }
				data, _ := os.ReadFile(filepath.Join(out, f))
				if err := json.Unmarshal(data, &got); err != nil || got.Token == "" || got.Email != "dev@credbroker.local" {
					t.Errorf("token %s the restart: %s (%v)", f, data, err)
				}
			}
			if r := d.cli(t, "session", "show", id); r.code == 0 {
				t.Errorf("session %s still there after the shell revoked it", id)
			}
		})
	}
}

func TestRunDaemon(t *testing.T) {
	d := startDaemon(t)
	r := d.cli(t, "run", "--daemon", "--no-gsutil", "--", "env", roleVar+"=luci-client", os.Args[0])
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var got struct{ Token, Email string }
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || got.Token == "" {
		t.Fatalf("child output %q: %v", r.stdout, err)
	}
	if out := d.mustCLI(t, "session", "list", "--json"); strings.TrimSpace(out) != "[]" {
		t.Errorf("sessions left after run --daemon: %s", out)
	}
	if r := d.cli(t, "run", "--daemon", "--", "sh", "-c", "exit 3"); r.code != 3 {
		t.Errorf("exit status %d, want 3: %s", r.code, r.stderr)
	}
	if r := d.cli(t, "run", "--daemon", "--dev", "--", "true"); r.code != exitUsage {
		t.Errorf("--dev with --daemon: exit %d", r.code)
	}
}

func TestDaemonNotRunning(t *testing.T) {
	root, _ := os.MkdirTemp("", "cbd-")
	defer os.RemoveAll(root)
	r := runBroker(t, root, []string{"CREDBROKER_SOCKET=" + filepath.Join(root, "none.sock")}, "session", "list")
	if r.code != exitError || !strings.Contains(r.stderr, "is `credbroker serve` running?") {
		t.Errorf("exit %d: %s", r.code, r.stderr)
	}
}

// TestDaemonSIGHUPReloadsCredential rotates nothing (the dev identity),
// but shows the reload runs and the sessions keep serving through it.
func TestDaemonSIGHUPReloadsCredential(t *testing.T) {
	d := startDaemon(t)
	var created daemon.Created
	if err := json.Unmarshal([]byte(d.mustCLI(t, "session", "create", "--json", "--no-gsutil")), &created); err != nil {
		t.Fatal(err)
	}
	d.cmd.Process.Signal(syscall.SIGHUP)
	logPath := filepath.Join(d.tmp, "serve.log")
	deadline := time.Now().Add(30 * time.Second)
	for {
		log, _ := os.ReadFile(logPath)
		if strings.Contains(string(log), "credential reloaded") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no reload logged: %s", log)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var lc []string
	for _, v := range created.Set {
		lc = append(lc, v.Name+"="+v.Value)
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(append(cleanTestEnv(), lc...), roleVar+"=luci-client")
	out, err := cmd.Output()
	if err != nil || !strings.Contains(string(out), `"token"`) {
		t.Fatalf("token after SIGHUP: %s, %v", out, err)
	}
	if in := d.mustCLI(t, "session", "show", created.ID); !strings.Contains(in, "running:          true") {
		t.Errorf("session after SIGHUP:\n%s", in)
	}
}

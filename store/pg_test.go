package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
)

// pgServer is a PostgreSQL server started for this package's tests from
// the machine's own binaries (Debian's postgresql package), in a
// temporary directory, listening on loopback only.
type pgServer struct {
	dir   string
	port  int
	bin   string
	runAs []string // prefix to run the server as a non-root user
}

var (
	pgOnce    sync.Once
	pg        *pgServer
	pgSkip    string
	pgCounter atomic.Int64
)

func TestMain(m *testing.M) {
	code := m.Run()
	if pg != nil {
		pg.stop()
	}
	os.Exit(code)
}

// postgresURL returns the URL of a fresh, empty schema on the test
// server (a schema is much cheaper to make than a database; the URL's
// search_path puts every table in it), starting the server at first use,
// or skips the test with the reason it cannot.
func postgresURL(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("starting PostgreSQL takes seconds; skipped with -short")
	}
	pgOnce.Do(func() { pg, pgSkip = startPostgres() })
	if pg == nil {
		t.Skip(pgSkip)
	}
	name := fmt.Sprintf("t%d", pgCounter.Add(1))
	admin, err := sql.Open("pgx", pg.url(""))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Exec("CREATE SCHEMA " + name); err != nil {
		t.Fatal(err)
	}
	return pg.url(name)
}

// url names the server's postgres database, with schema first on the
// search path when given.
func (p *pgServer) url(schema string) string {
	u := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", p.port)
	if schema != "" {
		u += "&search_path=" + schema
	}
	return u
}

// findPostgresBin finds initdb: on PATH, or where Debian puts it.
func findPostgresBin() string {
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p)
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(matches) == 0 {
		return ""
	}
	return filepath.Dir(matches[len(matches)-1])
}

func startPostgres() (*pgServer, string) {
	bin := findPostgresBin()
	if bin == "" {
		return nil, "PostgreSQL is not installed (no initdb; Debian package postgresql)"
	}
	p := &pgServer{bin: bin}
	var owner *user.User
	if os.Geteuid() == 0 {
		// PostgreSQL refuses to run as root.
		runuser, err := exec.LookPath("runuser")
		if err != nil {
			return nil, "running as root without runuser to start PostgreSQL as another user"
		}
		for _, name := range []string{"postgres", "nobody"} {
			if u, err := user.Lookup(name); err == nil {
				owner = u
				p.runAs = []string{runuser, "-u", name, "--"}
				break
			}
		}
		if owner == nil {
			return nil, "running as root with neither a postgres nor a nobody user to start PostgreSQL as"
		}
	}
	dir, err := os.MkdirTemp("", "store-pg-")
	if err != nil {
		return nil, err.Error()
	}
	p.dir = dir
	if owner != nil {
		uid, _ := strconv.Atoi(owner.Uid)
		gid, _ := strconv.Atoi(owner.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, err.Error()
		}
	}
	data := filepath.Join(dir, "data")
	if out, err := p.run("initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Sprintf("initdb failed: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		os.RemoveAll(dir)
		return nil, err.Error()
	}
	p.port = ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off", p.port, dir)
	if out, err := p.run("pg_ctl", "-D", data, "-o", opts, "-l", filepath.Join(dir, "log"), "-w", "-t", "60", "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "log"))
		os.RemoveAll(dir)
		return nil, fmt.Sprintf("pg_ctl start failed: %v\n%s\n%s", err, out, log)
	}
	return p, ""
}

func (p *pgServer) run(tool string, args ...string) (string, error) {
	argv := append(append(append([]string{}, p.runAs...), filepath.Join(p.bin, tool)), args...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = p.dir
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func (p *pgServer) stop() {
	p.run("pg_ctl", "-D", filepath.Join(p.dir, "data"), "-m", "immediate", "-w", "stop")
	os.RemoveAll(p.dir)
}

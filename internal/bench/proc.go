package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// clockTick is the unit of the CPU times in /proc/PID/stat (USER_HZ),
// 100 Hz on every Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

// CPUTime returns the user plus system CPU time process pid has used.
func CPUTime(pid int) (time.Duration, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields are counted
	// after its closing parenthesis.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, errors.New("bench: unexpected /proc stat format")
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("bench: short /proc stat line")
	}
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(ut+st) * clockTick, nil
}

// Proc is a helper process of the benchmark: the session under test or a
// baseline server. It prints one line (its address or its environment)
// and runs until its standard input closes.
type Proc struct {
	Pid   int
	Line  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
}

// StartProc starts exe with args and env and waits up to a minute for
// its first line of output.
func StartProc(exe string, args, env []string) (*Proc, error) {
	cmd := exec.Command(exe, args...)
	cmd.Env = env
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Proc{Pid: cmd.Process.Pid, cmd: cmd, stdin: stdin}
	line := make(chan string, 1)
	go func() {
		r := bufio.NewReaderSize(stdout, 1<<20)
		s, _ := r.ReadString('\n')
		line <- strings.TrimSpace(s)
		_, _ = io.Copy(io.Discard, r)
	}()
	select {
	case p.Line = <-line:
	case <-time.After(time.Minute):
	}
	if p.Line == "" {
		p.Stop()
		return nil, fmt.Errorf("bench: %s %s printed nothing", exe, strings.Join(args, " "))
	}
	return p, nil
}

// Stop closes the process's input and waits for it to end, killing it
// after ten seconds.
func (p *Proc) Stop() {
	p.stdin.Close()
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
}

// Probe is the child a benchmark session runs: it prints its environment
// as one JSON line and waits for its input to close.
func Probe(out io.Writer, in io.Reader) error {
	line, err := json.Marshal(os.Environ())
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(out, "%s\n", line); err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, in)
	return nil
}

// ServeBaseline runs a bare server on loopback answering body to every
// request (see StartBaseline), prints its address and serves until in
// closes.
func ServeBaseline(kind string, body []byte, header http.Header, out io.Writer, in io.Reader) error {
	addr, stop, err := StartBaseline(kind, body, header)
	if err != nil {
		return err
	}
	defer stop()
	if _, err := fmt.Fprintln(out, addr); err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, in)
	return nil
}

// StartBaseline starts a bare server on loopback answering body to every
// request and returns its address: kind "http" is plain net/http sending
// header (the front-end's own headers, so both write as many;
// Content-Type alone when header is empty), "tcp" reads a request and
// writes the bytes on the raw connection, then closes it (the devshell
// shape).
func StartBaseline(kind string, body []byte, header http.Header) (addr string, stop func(), err error) {
	if len(header) == 0 {
		header = http.Header{"Content-Type": {"application/json"}}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	switch kind {
	case "http":
		srv := &http.Server{
			Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				h := w.Header()
				for k, v := range header {
					h[k] = v
				}
				_, _ = w.Write(body)
			}),
			ReadHeaderTimeout: 10 * time.Second,
		}
		go func() { _ = srv.Serve(ln) }()
		return ln.Addr().String(), func() { srv.Close() }, nil
	case "tcp":
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					defer c.Close()
					_ = c.SetDeadline(time.Now().Add(10 * time.Second))
					buf := make([]byte, 512)
					if _, err := c.Read(buf); err != nil {
						return
					}
					_, _ = c.Write(body)
				}()
			}
		}()
		return ln.Addr().String(), func() { ln.Close() }, nil
	default:
		ln.Close()
		return "", nil, fmt.Errorf("bench: baseline kind %q: want http or tcp", kind)
	}
}

// sessionEnv is the environment of the session under test: this
// process's, without credentials that would change the broker's choice,
// with a private HOME and TMPDIR.
func sessionEnv(dir string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "GOOGLE_APPLICATION_CREDENTIALS", "CREDBROKER_SERVICE_ACCOUNT_JSON", "LUCI_CONTEXT",
			"HOME", "TMPDIR", "BOTO_CONFIG", "BOTO_PATH", "GCE_METADATA_HOST", "DEVSHELL_CLIENT_PORT":
			continue
		}
		env = append(env, kv)
	}
	return append(env, "HOME="+dir, "TMPDIR="+dir)
}

// waitCtx is a context for one setup step.
func waitCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), time.Minute)
}

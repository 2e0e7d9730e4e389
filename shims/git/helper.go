package git

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"credbroker/broker"
)

// DefaultHosts are the hosts served when none are configured: Google's
// Gerrit-on-Borg hosts and Cloud Source Repositories.
var DefaultHosts = []string{"*.googlesource.com", "source.developers.google.com"}

// Scopes are the scopes of the tokens given to git: Gerrit's, plus the
// email scope Google source hosts use to name the caller.
var Scopes = []string{
	"https://www.googleapis.com/auth/gerritcodereview",
	"https://www.googleapis.com/auth/userinfo.email",
}

// MinLifetime is the least lifetime a token handed to git has left: a
// clone of a large repository can take many minutes, and git asks only
// once.
const MinLifetime = 10 * time.Minute

// Tokens is where the helper gets tokens; *localauth.Client implements it.
type Tokens interface {
	AccessToken(ctx context.Context, scopes []string, minLifetime time.Duration) (broker.Token, error)
	Email() string
}

// Helper answers git's credential-helper requests.
type Helper struct {
	// Tokens mints the passwords.
	Tokens Tokens
	// Hosts are the host patterns answered; DefaultHosts when empty.
	Hosts []string
}

// maxRequest bounds what the helper reads from git.
const maxRequest = 64 << 10

// Serve handles one operation ("get", "store" or "erase") with git's
// request on in and the answer written to out.
func (h *Helper) Serve(ctx context.Context, op string, in io.Reader, out io.Writer) error {
	req, err := ReadRequest(io.LimitReader(in, maxRequest))
	if err != nil {
		return err
	}
	switch op {
	case "get":
	case "store", "erase":
		// The token lives only in git's memory and in the broker's cache.
		return nil
	default:
		return fmt.Errorf("unknown operation %q (want get, store or erase)", op)
	}
	if !h.Serves(req) {
		return nil
	}
	tok, err := h.Tokens.AccessToken(ctx, Scopes, MinLifetime)
	if err != nil {
		return err
	}
	user := req.Get("username")
	if user == "" {
		user = h.Tokens.Email()
	}
	if user == "" {
		user = "credbroker"
	}
	var b strings.Builder
	b.WriteString("username=" + user + "\n")
	b.WriteString("password=" + tok.Value + "\n")
	if !tok.Expiry.IsZero() {
		b.WriteString("password_expiry_utc=" + strconv.FormatInt(tok.Expiry.Unix(), 10) + "\n")
	}
	_, err = io.WriteString(out, b.String())
	return err
}

// Serves reports whether the helper answers req: https to a matching host.
func (h *Helper) Serves(req Request) bool {
	if req.Get("protocol") != "https" {
		return false
	}
	return MatchHost(h.hosts(), req.Get("host"))
}

func (h *Helper) hosts() []string {
	if len(h.Hosts) > 0 {
		return h.Hosts
	}
	return DefaultHosts
}

// MatchHost reports whether host ("name" or "name:port") matches one of
// patterns. A pattern with a port must match the whole host; one without
// matches only hosts without a port.
func MatchHost(patterns []string, host string) bool {
	host = strings.ToLower(host)
	if host == "" || strings.ContainsAny(host, "/\n") {
		return false
	}
	for _, p := range patterns {
		if ok, err := path.Match(strings.ToLower(p), host); err == nil && ok {
			return true
		}
	}
	return false
}

// Request is one credential description from git, in the order given.
type Request [][2]string

// Get returns the last value given for key.
func (r Request) Get(key string) string {
	v := ""
	for _, kv := range r {
		if kv[0] == key {
			v = kv[1]
		}
	}
	return v
}

// ErrMalformed is returned for input that is not git's credential format.
var ErrMalformed = errors.New("git credential input: malformed line")

// ReadRequest reads git's "key=value" lines up to a blank line or the end
// of input. A "url=" line is split into protocol, host and path as git
// itself does.
func ReadRequest(r io.Reader) (Request, error) {
	var req Request
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxRequest)
	for sc.Scan() {
		line := strings.TrimSuffix(sc.Text(), "\r")
		if line == "" {
			break
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || k == "" {
			return nil, ErrMalformed
		}
		if k == "url" {
			u, err := url.Parse(v)
			if err != nil {
				return nil, ErrMalformed
			}
			req = append(req, [2]string{"protocol", u.Scheme}, [2]string{"host", u.Host})
			if p := strings.TrimPrefix(u.Path, "/"); p != "" {
				req = append(req, [2]string{"path", p})
			}
			if u.User != nil {
				req = append(req, [2]string{"username", u.User.Username()})
			}
			continue
		}
		req = append(req, [2]string{k, v})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("git credential input: %w", err)
	}
	return req, nil
}

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"credbroker/broker"
	"credbroker/lucictx"
	"credbroker/protocols/localauth"
	"credbroker/session"
	"credbroker/sources/dev"

	"github.com/urfave/cli/v2"
	"golang.org/x/oauth2"
)

func demoCommand() *cli.Command {
	return &cli.Command{
		Name:  "demo",
		Usage: "start a session on the offline dev identity and call every front-end like a real client",
		Description: "Needs no account, no network and no configuration. It starts every front-end on\n" +
			"loopback with the embedded dev identity, asks each one for a token the way its real\n" +
			"clients do, prints what came back, and stops. The dev tokens are not Google tokens.",
		Flags:  append(append(logFlags(), frontendFlags...), toolFlags...),
		Action: demoAction,
	}
}

// demoRow is one line of the demo's table.
type demoRow struct {
	frontend, addr, account, token string
	expiresIn, latency             time.Duration
	err                            error
}

func demoAction(c *cli.Context) error {
	log, err := newLogger(c)
	if err != nil {
		return err
	}
	frontends, err := frontendsFrom(c)
	if err != nil {
		return err
	}
	tools := toolsFrom(c, &frontends)
	cred, err := selectCredential(devFlags{}, log)
	if err != nil {
		return err
	}
	b, err := newBroker(cred, []string{defaultAccountID}, defaultAccountID, log)
	if err != nil {
		return brokerError(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(c.Context, time.Minute)
	defer cancel()

	sess, err := session.Start(ctx, session.Config{
		Broker:    b,
		Scopes:    scopesDefault,
		Frontends: frontends,
		ParentEnv: os.Environ(),
		Logger:    log,
		Tools:     tools,
	})
	if err != nil {
		return brokerError(err)
	}
	defer sess.Close()

	out := c.App.Writer
	fmt.Fprintf(out, "credbroker demo: one session on the offline dev identity %s\n", cred.src.Email())
	fmt.Fprintf(out, "(dev tokens start with %q and are not Google tokens)\n\n", dev.TokenPrefix)
	var rows []demoRow
	for _, ep := range sess.Endpoints {
		rows = append(rows, callFrontend(ctx, ep, sess, cred.src.Email()))
	}
	for _, name := range sess.Helpers {
		rows = append(rows, callFrontend(ctx, session.Endpoint{Name: name, Addr: "credential helper"}, sess, cred.src.Email()))
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "FRONT-END\tADDRESS\tACCOUNT\tTOKEN\tEXPIRES IN\tLATENCY")
	failed := 0
	for _, r := range rows {
		if r.err != nil {
			failed++
			fmt.Fprintf(w, "%s\t%s\t-\tFAILED: %v\t-\t-\n", r.frontend, r.addr, r.err)
			continue
		}
		expires := "-" // the docker protocol does not carry an expiry
		if r.expiresIn > -time.Hour*24*365 {
			expires = r.expiresIn.Round(time.Second).String()
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", r.frontend, r.addr, r.account, tokenPrefix(r.token),
			expires, r.latency.Round(time.Microsecond))
	}
	w.Flush()
	st := b.Stats()
	fmt.Fprintf(out, "\ntoken core: %d mint(s), %d cache hit(s); every front-end shares one cache\n", st.Mints, st.Hits)
	if failed > 0 {
		return cli.Exit(fmt.Sprintf("%d front-end(s) failed", failed), exitError)
	}
	return nil
}

// devFlags makes selectCredential choose the dev source.
type devFlags struct{}

func (devFlags) Bool(name string) bool  { return name == "dev" }
func (devFlags) String(string) string   { return "" }
func (devFlags) IsSet(name string) bool { return name == "dev" }

// tokenPrefix shows enough of a token to recognise it, never all of it.
func tokenPrefix(tok string) string {
	const keep = 20
	if len(tok) <= keep {
		return tok
	}
	return tok[:keep] + "…"
}

// callFrontend asks one front-end for a token the way its clients do.
func callFrontend(ctx context.Context, ep session.Endpoint, sess *session.Session, email string) demoRow {
	row := demoRow{frontend: ep.Name, addr: ep.Addr}
	start := time.Now()
	var tok broker.Token
	var err error
	switch ep.Name {
	case "local_auth":
		row.account, tok, err = callLocalAuth(ctx, sess.LUCIContext)
	case "gcemeta":
		row.account, tok, err = callMetadata(ctx, ep.Addr)
	case "devshell":
		row.account, tok, err = callDevshell(ctx, ep.Addr)
	case "gsutil":
		// gsutil's token endpoint does not tell the email; the .boto's
		// refresh token stands for the session's default account.
		row.account = email
		tok, err = callGsutil(ctx, sess.Env)
	case "git":
		row.account, tok, err = callGit(ctx, sess.Env)
	case "docker":
		// Google's registries take the token with a fixed user name; the
		// token is the default account's.
		row.account = email
		tok, err = callDocker(ctx, sess.Env)
	case "firebase":
		row.account = email
		tok, err = callFirebase(ctx, sess.Env)
	default:
		err = errors.New("the demo does not know this front-end")
	}
	row.latency = time.Since(start)
	row.token, row.expiresIn, row.err = tok.Value, time.Until(tok.Expiry), err
	return row
}

// callLocalAuth reads LUCI_CONTEXT from its file, as LUCI tools do.
func callLocalAuth(ctx context.Context, path string) (string, broker.Token, error) {
	lc, _, err := lucictx.Load(path)
	if err != nil {
		return "", broker.Token{}, err
	}
	la, err := lc.LocalAuth()
	if err != nil {
		return "", broker.Token{}, err
	}
	cl, err := localauth.NewClient(la)
	if err != nil {
		return "", broker.Token{}, err
	}
	defer cl.CloseIdleConnections()
	tok, err := cl.AccessToken(ctx, scopesDefault, time.Minute)
	return cl.Email(), tok, err
}

// callMetadata does what Google client libraries do on GCE: read the
// default account's email, then its token.
func callMetadata(ctx context.Context, addr string) (string, broker.Token, error) {
	get := func(path string) ([]byte, error) {
		req, err := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/computeMetadata/v1/"+path, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Metadata-Flavor", "Google")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("%s: HTTP %d", path, resp.StatusCode)
		}
		return body, err
	}
	email, err := get("instance/service-accounts/default/email")
	if err != nil {
		return "", broker.Token{}, err
	}
	body, err := get("instance/service-accounts/default/token")
	if err != nil {
		return "", broker.Token{}, err
	}
	var t struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
	}
	if err := json.Unmarshal(body, &t); err != nil {
		return "", broker.Token{}, err
	}
	return string(email), broker.Token{Value: t.AccessToken, Expiry: time.Now().Add(time.Duration(t.ExpiresIn) * time.Second)}, nil
}

// callDevshell sends the request Cloud Shell clients send and reads the
// framed reply.
func callDevshell(ctx context.Context, addr string) (string, broker.Token, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", broker.Token{}, err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	if _, err := io.WriteString(conn, "2\n[]"); err != nil {
		return "", broker.Token{}, err
	}
	r := bufio.NewReader(conn)
	header, err := r.ReadString('\n')
	if err != nil {
		return "", broker.Token{}, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(header))
	if err != nil || n < 0 || n > 1<<16 {
		return "", broker.Token{}, fmt.Errorf("bad devshell length %q", header)
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		return "", broker.Token{}, err
	}
	var reply []any
	if err := json.Unmarshal(payload, &reply); err != nil {
		return "", broker.Token{}, err
	}
	if len(reply) < 4 {
		return "", broker.Token{}, fmt.Errorf("devshell error: %v", reply)
	}
	email, _ := reply[0].(string)
	tok, _ := reply[2].(string)
	secs, _ := reply[3].(float64)
	return email, broker.Token{Value: tok, Expiry: time.Now().Add(time.Duration(secs) * time.Second)}, nil
}

// callGsutil does what gsutil does with the session's .boto: exchange the
// refresh token in it at the token URI it names.
func callGsutil(ctx context.Context, env []string) (broker.Token, error) {
	path, _ := session.Env(env).Get("BOTO_CONFIG")
	data, err := os.ReadFile(path)
	if err != nil {
		return broker.Token{}, err
	}
	var refresh, tokenURI string
	for _, line := range strings.Split(string(data), "\n") {
		k, v, _ := strings.Cut(line, "=")
		switch strings.TrimSpace(k) {
		case "gs_oauth2_refresh_token":
			refresh = strings.TrimSpace(v)
		case "provider_token_uri":
			tokenURI = strings.TrimSpace(v)
		}
	}
	if refresh == "" || tokenURI == "" {
		return broker.Token{}, errors.New(".boto has no refresh token or token URI")
	}
	conf := &oauth2.Config{ClientID: "demo", Endpoint: oauth2.Endpoint{TokenURL: tokenURI, AuthStyle: oauth2.AuthStyleInParams}}
	tok, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: refresh}).Token()
	if err != nil {
		return broker.Token{}, err
	}
	return broker.Token{Value: tok.AccessToken, Expiry: tok.Expiry}, nil
}

package userlogin

import (
	"bufio"
	"context"
	"credbroker/internal/jwtclaims"
	"credbroker/internal/safetext"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"

	"credbroker/internal/loopback"
	"credbroker/tokencache"

	"golang.org/x/oauth2"
)

// LoginOptions configure Login.
type LoginOptions struct {
	// NoBrowser prints the URL and reads the redirected address (or the
	// code) from In, for shells without a local browser. The loopback
	// listener runs as well, so a browser on this machine still works.
	NoBrowser bool
	// OpenBrowser opens a URL; the default runs $BROWSER, xdg-open or
	// open. When it fails the URL is printed and Login waits all the same.
	OpenBrowser func(url string) error
	// Out receives the instructions for the user (stderr in the CLI).
	Out io.Writer
	// In is where a pasted address or code is read from (stdin).
	In io.Reader
	// HTTPClient talks to the token endpoint.
	HTTPClient *http.Client
	// Logger gets debug lines.
	Logger *slog.Logger
}

// Result is what a login stored.
type Result struct {
	Email  string
	Scopes []string
}

// Login runs the authorization-code flow with PKCE and a loopback
// redirect, and stores the refresh token in cache, replacing an earlier
// login of the same client. ctx bounds the wait for the user.
func Login(ctx context.Context, cfg Config, cache *tokencache.Cache, opts LoginOptions) (Result, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return Result{}, err
	}
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = defaultHTTPClient()
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.OpenBrowser == nil {
		opts.OpenBrowser = openBrowser
	}
	state := randomString(24)
	verifier := oauth2.GenerateVerifier()

	results := make(chan callback, 2)
	srv, err := loopback.ServeHTTP(callbackHandler(state, results), loopback.HTTPOptions{Logger: opts.Logger})
	if err != nil {
		return Result{}, fmt.Errorf("login: listening for the redirect: %w", err)
	}
	defer srv.Close()

	oc := cfg.oauth2()
	oc.RedirectURL = "http://" + srv.Addr() + "/"
	authURL := oc.AuthCodeURL(state, oauth2.AccessTypeOffline, oauth2.ApprovalForce, oauth2.S256ChallengeOption(verifier))

	if opts.NoBrowser {
		fmt.Fprintf(opts.Out, "Open this URL in a browser (on any machine) and approve:\n\n  %s\n\n"+
			"The browser is then sent to %s, which may fail to load if it runs elsewhere.\n"+
			"Paste that whole address (or just the value of code=) here and press Enter:\n", authURL, oc.RedirectURL)
		if opts.In != nil {
			go readPasted(opts.In, state, results)
		}
	} else if err := opts.OpenBrowser(authURL); err != nil {
		fmt.Fprintf(opts.Out, "Could not open a browser (%v). Open this URL and approve:\n\n  %s\n\nWaiting for the redirect to %s ...\n", err, authURL, oc.RedirectURL)
	} else {
		fmt.Fprintf(opts.Out, "Your browser has been opened to this URL; approve there:\n\n  %s\n\nWaiting for the redirect to %s ...\n", authURL, oc.RedirectURL)
	}

	var cb callback
	select {
	case cb = <-results:
	case <-ctx.Done():
		return Result{}, fmt.Errorf("login: gave up waiting for the authorization: %w", ctx.Err())
	}
	if cb.err != nil {
		return Result{}, fmt.Errorf("login: %w", cb.err)
	}
	tok, err := oc.Exchange(withClient(ctx, opts.HTTPClient), cb.code, oauth2.VerifierOption(verifier))
	if err != nil {
		s := newSource(cfg, cache, "", Options{})
		return Result{}, fmt.Errorf("login: exchanging the code: %w", s.classify(err))
	}
	if tok.RefreshToken == "" {
		return Result{}, errors.New("login: the token endpoint gave no refresh token")
	}
	e := tokencache.Entry{
		RefreshToken: tok.RefreshToken, AccessToken: tok.AccessToken, Expiry: tok.Expiry,
		Scopes: cfg.Scopes, Meta: cfg.meta(),
	}
	if scope, _ := tok.Extra("scope").(string); scope != "" {
		e.Scopes = strings.Fields(scope)
	}
	if idt, _ := tok.Extra("id_token").(string); idt != "" {
		e.IDToken, e.Email = idt, jwtclaims.Email(idt)
	}
	if err := cache.Put(CacheKey(cfg.ClientID), e); err != nil {
		return Result{}, fmt.Errorf("login: storing the login: %w", err)
	}
	return Result{Email: e.Email, Scopes: e.Scopes}, nil
}

// callback is the outcome of the redirect (or of a pasted address).
type callback struct {
	code string
	err  error
}

// callbackHandler serves the redirect target. Only a request carrying
// the login's state counts; anything else (a favicon, a stray page) is
// answered and ignored.
func callbackHandler(state string, results chan<- callback) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		cb, ok := parseCallback(r.URL.Query(), state)
		if !ok {
			http.Error(w, "This is not the answer to credbroker's login request.", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if cb.err != nil {
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, "credbroker login failed: "+cb.err.Error()+"\n")
		} else {
			io.WriteString(w, "credbroker is logged in. You can close this tab.\n")
		}
		select {
		case results <- cb:
		default:
		}
	})
}

// parseCallback reads code or error from a redirect's query; ok is false
// when the state does not match.
func parseCallback(q url.Values, state string) (callback, bool) {
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(state)) != 1 {
		return callback{}, false
	}
	if e := q.Get("error"); e != "" {
		return callback{err: fmt.Errorf("the authorization server refused: %s", safetext.Line(e, 64))}, true
	}
	if q.Get("code") == "" {
		return callback{err: errors.New("the redirect carries no code")}, true
	}
	return callback{code: q.Get("code")}, true
}

// readPasted reads lines until one is a redirected address with the
// right state, or a bare code.
func readPasted(in io.Reader, state string, results chan<- callback) {
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		if strings.Contains(line, "://") || strings.HasPrefix(line, "/?") || strings.HasPrefix(line, "?") {
			u, err := url.Parse(line)
			if err != nil {
				continue
			}
			if cb, ok := parseCallback(u.Query(), state); ok {
				results <- cb
				return
			}
			continue
		}
		results <- callback{code: line}
		return
	}
}

// openBrowser asks the desktop to open u.
func openBrowser(u string) error {
	var cmd *exec.Cmd
	switch {
	case os.Getenv("BROWSER") != "":
		cmd = exec.Command(os.Getenv("BROWSER"), u)
	case runtime.GOOS == "darwin":
		cmd = exec.Command("open", u)
	case runtime.GOOS == "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", u)
	default:
		if os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
			return errors.New("no graphical session")
		}
		cmd = exec.Command("xdg-open", u)
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	go cmd.Wait()
	return nil
}

// Logout revokes the stored refresh token at the revocation endpoint and
// deletes the login. The local copy is deleted even when revocation
// fails; the error then says so. ok is false when there was no login.
func Logout(ctx context.Context, cfg Config, cache *tokencache.Cache, client *http.Client) (ok bool, err error) {
	cfg, err = Stored(cache, cfg)
	if errors.Is(err, ErrLoginRequired) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if client == nil {
		client = defaultHTTPClient()
	}
	key := CacheKey(cfg.ClientID)
	e, found, err := cache.Get(key)
	if err != nil || !found {
		return false, err
	}
	revokeErr := revoke(ctx, client, cfg.RevokeURL, e.RefreshToken)
	if err := cache.Delete(key); err != nil {
		return true, err
	}
	if revokeErr != nil {
		return true, fmt.Errorf("the local login is deleted, but revoking it upstream failed: %w", revokeErr)
	}
	return true, nil
}

func revoke(ctx context.Context, client *http.Client, revokeURL, token string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, revokeURL, strings.NewReader(url.Values{"token": {token}}.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode == http.StatusOK:
		return nil
	case resp.StatusCode == http.StatusBadRequest && strings.Contains(string(body), "invalid_token"):
		return nil // already revoked or expired: the goal is met
	default:
		return errors.New("revocation endpoint " + revokeURL + " answered HTTP " + strconv.Itoa(resp.StatusCode))
	}
}

func randomString(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

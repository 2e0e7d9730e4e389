package localauth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"credbroker/broker"
	"credbroker/internal/loopback"
	"credbroker/lucictx"
)

// maxResponse bounds what the client reads from a server.
const maxResponse = 1 << 20

// Client asks a local_auth server for tokens, as LUCI's Go client does. It
// always speaks for one account, the section's default unless
// NewClientFor names another. It implements broker.Source, so an upstream
// LUCI_CONTEXT can back a broker account; it does not cache.
type Client struct {
	url     string // "http://127.0.0.1:PORT/rpc/LuciLocalAuthService."
	secret  []byte
	account lucictx.LocalAuthAccount
	http    *http.Client
}

var _ broker.Source = (*Client)(nil)

// NewClient returns a client for the default account of a local_auth
// section. la is nil when LUCI_CONTEXT has no such section.
func NewClient(la *lucictx.LocalAuth) (*Client, error) {
	if la == nil {
		return nil, errors.New(`no "local_auth" in LUCI_CONTEXT`)
	}
	if la.DefaultAccountID == "" {
		return nil, errors.New(`no "default_account_id" in LUCI_CONTEXT["local_auth"]`)
	}
	return NewClientFor(la, la.DefaultAccountID)
}

// NewClientFor returns a client for one of the section's accounts.
func NewClientFor(la *lucictx.LocalAuth, account string) (*Client, error) {
	if la == nil {
		return nil, errors.New(`no "local_auth" in LUCI_CONTEXT`)
	}
	acc, ok := la.Account(account)
	if !ok {
		return nil, fmt.Errorf("%w: %q", lucictx.ErrNoLocalAuthAccount, account)
	}
	if la.RPCPort == 0 {
		return nil, errors.New(`no "rpc_port" in LUCI_CONTEXT["local_auth"]`)
	}
	return &Client{
		// Always IPv4 loopback, whatever the environment says: the port
		// is only meaningful there, and no proxy may see the secret.
		url:     "http://" + net.JoinHostPort(loopback.IPv4, strconv.Itoa(int(la.RPCPort))) + "/rpc/LuciLocalAuthService.",
		secret:  bytes.Clone(la.Secret),
		account: acc,
		http:    &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 8, IdleConnTimeout: time.Minute}},
	}, nil
}

// Account is the id of the account the client asks for.
func (c *Client) Account() string { return c.account.ID }

// Email is the account's email as the section lists it, or "" when it
// has none.
func (c *Client) Email() string {
	if c.account.Email == lucictx.NoEmail {
		return ""
	}
	return c.account.Email
}

// AccessToken asks for an access token. The protocol cannot carry a
// lifetime, so minLifetime is ignored: the server decides (at least three
// minutes).
func (c *Client) AccessToken(ctx context.Context, scopes []string, minLifetime time.Duration) (broker.Token, error) {
	req := struct {
		Scopes    []string `json:"scopes"`
		Secret    []byte   `json:"secret"`
		AccountID string   `json:"account_id"`
	}{scopes, c.secret, c.account.ID}
	var resp struct {
		Token string `json:"access_token"`
		rpcResult
	}
	if err := c.call(ctx, methodOAuth, req, &resp); err != nil {
		return broker.Token{}, err
	}
	return resp.token(resp.Token)
}

// IDToken asks for an ID token for audience; minLifetime is ignored as for
// AccessToken.
func (c *Client) IDToken(ctx context.Context, audience string, minLifetime time.Duration) (broker.Token, error) {
	req := struct {
		Audience  string `json:"audience"`
		Secret    []byte `json:"secret"`
		AccountID string `json:"account_id"`
	}{audience, c.secret, c.account.ID}
	var resp struct {
		Token string `json:"id_token"`
		rpcResult
	}
	if err := c.call(ctx, methodID, req, &resp); err != nil {
		return broker.Token{}, err
	}
	return resp.token(resp.Token)
}

// rpcResult holds the fields both methods' answers share.
type rpcResult struct {
	Expiry       int64  `json:"expiry"`
	ErrorCode    int    `json:"error_code"`
	ErrorMessage string `json:"error_message"`
}

func (r *rpcResult) token(value string) (broker.Token, error) {
	if r.ErrorCode != 0 || r.ErrorMessage != "" {
		msg := r.ErrorMessage
		if msg == "" {
			msg = "unknown error"
		}
		return broker.Token{}, broker.NewFatalCode(r.ErrorCode, fmt.Errorf("local auth - RPC code %d: %s", r.ErrorCode, msg))
	}
	if value == "" {
		return broker.Token{}, broker.Fatalf("local auth - the server returned no token")
	}
	return broker.Token{Value: value, Expiry: time.Unix(r.Expiry, 0).UTC()}, nil
}

// call POSTs one RPC and decodes a 200 answer into out. Network failures
// and 5xx are transient, other statuses fatal.
func (c *Client) call(ctx context.Context, method string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return broker.NewFatal(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url+method, bytes.NewReader(body))
	if err != nil {
		return broker.NewFatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return broker.Transientf("local auth - %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return broker.Transientf("local auth - reading the response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		err := fmt.Errorf("local auth - HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(data)))
		if resp.StatusCode >= 500 {
			return broker.NewTransient(err)
		}
		return broker.NewFatal(err)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return broker.Fatalf("local auth - the server's answer is not JSON: %w", err)
	}
	return nil
}

// CloseIdleConnections closes the client's kept-alive connections.
func (c *Client) CloseIdleConnections() { c.http.CloseIdleConnections() }

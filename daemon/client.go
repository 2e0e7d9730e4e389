package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Client calls a daemon's admin API over its unix socket.
type Client struct {
	// Socket is the admin socket's path.
	Socket string
	// Bearer, when set, is a session credential sent with every call.
	Bearer string

	http *http.Client
}

// NewClient returns a client for the daemon listening on socket.
func NewClient(socket string) *Client {
	return &Client{Socket: socket, http: &http.Client{
		Timeout: 2 * time.Minute,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", socket)
			},
			DisableKeepAlives: true,
		},
	}}
}

// ServerError is an error the daemon answered with.
type ServerError struct {
	Status int
	Msg    string
}

func (e *ServerError) Error() string { return e.Msg }

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://credbroker"+path, body)
	if err != nil {
		return err
	}
	if c.Bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.Bearer)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the daemon at %s (is `credbroker serve` running?): %w", c.Socket, unwrapURL(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			e.Error = resp.Status
		}
		return &ServerError{Status: resp.StatusCode, Msg: e.Error}
	}
	if s, ok := out.(*string); ok {
		*s = string(data)
		return nil
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

func unwrapURL(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}

// Create asks for a new session.
func (c *Client) Create(ctx context.Context, req CreateRequest) (*Created, error) {
	var out Created
	return &out, c.do(ctx, http.MethodPost, "/v1/sessions", req, &out)
}

// ListQuery filters List.
type ListQuery struct {
	Statuses []string
	Owner    *int64
	Limit    int
}

// List lists sessions.
func (c *Client) List(ctx context.Context, q ListQuery) ([]Info, error) {
	v := url.Values{}
	for _, s := range q.Statuses {
		v.Add("status", s)
	}
	if q.Owner != nil {
		v.Set("owner", strconv.FormatInt(*q.Owner, 10))
	}
	if q.Limit != 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	path := "/v1/sessions"
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	var out []Info
	return out, c.do(ctx, http.MethodGet, path, nil, &out)
}

// Show describes one session.
func (c *Client) Show(ctx context.Context, id string) (Info, error) {
	var out Info
	return out, c.do(ctx, http.MethodGet, "/v1/sessions/"+url.PathEscape(id), nil, &out)
}

// Revoke ends a session.
func (c *Client) Revoke(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/v1/sessions/"+url.PathEscape(id), nil, nil)
}

// Status returns the daemon's counters and sessions.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var out Status
	return out, c.do(ctx, http.MethodGet, "/v1/status", nil, &out)
}

// Metrics returns the Prometheus text.
func (c *Client) Metrics(ctx context.Context) (string, error) {
	var out string
	return out, c.do(ctx, http.MethodGet, "/metrics", nil, &out)
}

package docker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"time"

	"credbroker/broker"
)

// HelperName is the helper's name in config.json; docker runs
// "docker-credential-" + HelperName.
const HelperName = "credbroker"

// BinaryName is the name docker runs the helper by.
const BinaryName = "docker-credential-" + HelperName

// Username is the user name Google's registries take with an OAuth
// access token as the password.
const Username = "oauth2accesstoken"

// Scopes are the scopes of the tokens given to docker.
var Scopes = []string{
	"https://www.googleapis.com/auth/cloud-platform",
	"https://www.googleapis.com/auth/userinfo.email",
}

// MinLifetime is the least lifetime a token handed to docker has left:
// the daemon uses it for a whole pull or push.
const MinLifetime = 10 * time.Minute

// ErrNotFound is docker's "no credentials for this registry" message.
var ErrNotFound = errors.New("credentials not found in native keychain")

// Tokens is where the helper gets tokens; *localauth.Client implements it.
type Tokens interface {
	AccessToken(ctx context.Context, scopes []string, minLifetime time.Duration) (broker.Token, error)
}

// Helper answers docker's credential-helper requests.
type Helper struct {
	// Tokens mints the secrets.
	Tokens Tokens
	// Registries are the registry hosts served.
	Registries []string
	// Version is printed by the version operation.
	Version string
}

const maxInput = 64 << 10

// Serve handles one operation and returns the helper's exit status. It
// is the one place that writes errors, on out as docker reads them.
func (h *Helper) Serve(ctx context.Context, op string, in io.Reader, out io.Writer) int {
	if err := h.serve(ctx, op, in, out); err != nil {
		fmt.Fprintln(out, strings.ReplaceAll(err.Error(), "\n", " "))
		return 1
	}
	return 0
}

func (h *Helper) serve(ctx context.Context, op string, in io.Reader, out io.Writer) error {
	switch op {
	case "get":
		data, err := io.ReadAll(io.LimitReader(in, maxInput))
		if err != nil {
			return err
		}
		server := strings.TrimSpace(string(data))
		if !h.Serves(server) {
			return ErrNotFound
		}
		tok, err := h.Tokens.AccessToken(ctx, Scopes, MinLifetime)
		if err != nil {
			return fmt.Errorf("credbroker: cannot get a token for %s: %w", RegistryHost(server), err)
		}
		return writeJSON(out, struct {
			ServerURL string
			Username  string
			Secret    string
		}{server, Username, tok.Value})
	case "list":
		m := map[string]string{}
		for _, r := range h.Registries {
			m["https://"+r] = Username
		}
		return writeJSON(out, m)
	case "store", "erase":
		_, _ = io.Copy(io.Discard, io.LimitReader(in, maxInput))
		return fmt.Errorf("credbroker: %s is not supported: this helper serves the session's own credential and keeps nothing", op)
	case "version":
		_, err := fmt.Fprintln(out, BinaryName, h.Version)
		return err
	default:
		return fmt.Errorf("usage: %s get|list|store|erase|version", BinaryName)
	}
}

func writeJSON(out io.Writer, v any) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	_, err := out.Write(b.Bytes())
	return err
}

// Serves reports whether server names a registry the helper serves.
func (h *Helper) Serves(server string) bool {
	host := RegistryHost(server)
	return host != "" && slices.Contains(h.Registries, host)
}

// RegistryHost is the lower-case host (with its port, if any) of a server
// URL as docker passes it: with or without a scheme, maybe with a path.
func RegistryHost(server string) string {
	s := strings.TrimSpace(server)
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil || u.User != nil {
			return ""
		}
		s = u.Host
	} else {
		s, _, _ = strings.Cut(s, "/")
	}
	if strings.ContainsAny(s, " \t\r\n@") {
		return ""
	}
	return strings.ToLower(s)
}

package bench

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"credbroker/lucictx"
)

// Endpoints says how to reach a running session's front-ends. It is read
// from the environment the session gives its child, exactly as clients
// find the front-ends, so the benchmark and the robustness tests go
// through the same discovery as real tools.
type Endpoints struct {
	// LocalAuth is the local_auth section of LUCI_CONTEXT; nil when the
	// session does not serve local_auth.
	LocalAuth *lucictx.LocalAuth
	// MetadataAddr is GCE_METADATA_HOST ("127.0.0.1:PORT"), or "".
	MetadataAddr string
	// DevshellPort is DEVSHELL_CLIENT_PORT, or 0.
	DevshellPort int
	// GsutilTokenURL and GsutilRefreshToken come from the .boto file named
	// by BOTO_CONFIG; empty when gsutil runs in GCE mode or not at all.
	GsutilTokenURL     string
	GsutilRefreshToken string
}

// EndpointsFromEnv reads the front-ends a session announced in env.
func EndpointsFromEnv(env []string) (Endpoints, error) {
	get := func(k string) string {
		for i := len(env) - 1; i >= 0; i-- {
			if name, v, ok := strings.Cut(env[i], "="); ok && name == k {
				return v
			}
		}
		return ""
	}
	var ep Endpoints
	if path, ok := lucictx.LookupEnv(env); ok && path != "" {
		c, _, err := lucictx.Load(path)
		if err != nil {
			return ep, fmt.Errorf("LUCI_CONTEXT: %w", err)
		}
		la, err := c.LocalAuth()
		if err != nil {
			return ep, fmt.Errorf("LUCI_CONTEXT local_auth: %w", err)
		}
		ep.LocalAuth = la
	}
	ep.MetadataAddr = get("GCE_METADATA_HOST")
	if p := get("DEVSHELL_CLIENT_PORT"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil {
			return ep, fmt.Errorf("DEVSHELL_CLIENT_PORT %q: %w", p, err)
		}
		ep.DevshellPort = n
	}
	if path := get("BOTO_CONFIG"); path != "" {
		uri, tok, err := readBoto(path)
		if err != nil {
			return ep, err
		}
		ep.GsutilTokenURL, ep.GsutilRefreshToken = uri, tok
	}
	return ep, nil
}

// readBoto finds the token endpoint and refresh token in a .boto file
// written by the gsutil shim. Only the two keys matter, so a plain
// key = value scan is enough.
func readBoto(path string) (tokenURI, refreshToken string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", "", fmt.Errorf("BOTO_CONFIG: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "provider_token_uri":
			tokenURI = strings.TrimSpace(v)
		case "gs_oauth2_refresh_token":
			refreshToken = strings.TrimSpace(v)
		}
	}
	if err := sc.Err(); err != nil {
		return "", "", fmt.Errorf("BOTO_CONFIG: %w", err)
	}
	if (tokenURI == "") != (refreshToken == "") {
		return "", "", errors.New("BOTO_CONFIG: a token endpoint without a refresh token, or the reverse")
	}
	return tokenURI, refreshToken, nil
}

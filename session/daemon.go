package session

import (
	"context"
	"fmt"
	"net"
	"os"
	"time"

	"credbroker/broker"
)

// Tokens is the token core as the front-ends use it; *broker.Broker
// implements it. A wrapper given by Config.WrapTokens should also have
// Email(account) (string, error) so local_auth can name the accounts.
type Tokens interface {
	AccessToken(ctx context.Context, account string, scopes []string, minLifetime time.Duration) (broker.Token, error)
	IDToken(ctx context.Context, account, audience string, minLifetime time.Duration) (broker.Token, error)
}

// Ports are the front-ends' ports; zero means any free port. A daemon
// that restarts gives a session its old ports back, so the children
// started before the restart find their servers where they were.
type Ports struct {
	LocalAuth int
	GCEMeta   int
	Devshell  int
	Gsutil    int
}

// PortsOf reads the ports back out of a started session's endpoints.
func PortsOf(endpoints []Endpoint) Ports {
	var p Ports
	for _, ep := range endpoints {
		_, port, err := net.SplitHostPort(ep.Addr)
		if err != nil {
			continue
		}
		var n int
		fmt.Sscan(port, &n)
		switch ep.Name {
		case "local_auth":
			p.LocalAuth = n
		case "gcemeta":
			p.GCEMeta = n
		case "devshell":
			p.Devshell = n
		case "gsutil":
			p.Gsutil = n
		}
	}
	return p
}

// Suspend stops the front-ends like Close but leaves the session's files,
// so that a daemon shutting down for a restart can bring the session back
// with the same Dir, ports and secret. Either Suspend or Close takes
// effect, whichever comes first.
func (s *Session) Suspend() error {
	s.keepFiles = true
	return s.Close()
}

func (cfg *Config) tokens(frontend string) Tokens {
	if cfg.WrapTokens != nil {
		return cfg.WrapTokens(frontend, cfg.Broker)
	}
	return cfg.Broker
}

func (cfg *Config) allowPeer() func(net.Conn) bool {
	if cfg.AllowPeer != nil {
		return cfg.AllowPeer
	}
	return samePeerUser()
}

// sessionDir makes the session's directory: Config.Dir when given (kept
// if it exists), else a fresh private one under TempDir after sweeping
// the ones dead brokers left there.
func sessionDir(cfg Config) (string, error) {
	if cfg.Dir == "" {
		RemoveStale(cfg.TempDir, cfg.Logger)
		return makePrivateDir(cfg.TempDir)
	}
	if err := os.Mkdir(cfg.Dir, 0o700); err != nil && !os.IsExist(err) {
		return "", fmt.Errorf("create session directory: %w", err)
	}
	info, err := os.Lstat(cfg.Dir)
	if err != nil {
		return "", fmt.Errorf("session directory: %w", err)
	}
	if !info.IsDir() || !ownedByMe(info) || info.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("session directory %s is not a private directory of this user", cfg.Dir)
	}
	return cfg.Dir, nil
}

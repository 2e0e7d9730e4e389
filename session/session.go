package session

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"credbroker/broker"
	"credbroker/internal/loopback"
	"credbroker/lucictx"
	"credbroker/protocols/devshell"
	"credbroker/protocols/gcemeta"
	"credbroker/protocols/localauth"
	"credbroker/shims/gsutil"
)

// Frontends selects the front-ends a session runs.
type Frontends struct {
	LocalAuth bool
	GCEMeta   bool
	Devshell  bool
	Gsutil    bool
	// BotoGCE makes the gsutil shim write the [GoogleCompute] form of
	// .boto (gsutil then asks the metadata server, which it only finds at
	// metadata.google.internal:80) instead of running its token endpoint.
	BotoGCE bool
	// Git, Docker and Firebase hand those tools the session's tokens
	// (see Tools).
	Git, Docker, Firebase bool
}

// AllFrontends turns every front-end on. The git, docker and firebase
// integrations stay off: they change the tools' configuration, and each
// caller decides on them.
func AllFrontends() Frontends {
	return Frontends{LocalAuth: true, GCEMeta: true, Devshell: true, Gsutil: true}
}

// Config describes a session to start.
type Config struct {
	// Broker is the token core; it must serve every id in Accounts.
	Broker *broker.Broker
	// Accounts are the broker account ids local_auth serves; the broker's
	// default account when empty.
	Accounts []string
	// DefaultAccount is the account of the metadata, devshell and gsutil
	// front-ends and local_auth's default; Accounts[0] when empty.
	DefaultAccount string
	// Scopes are the default scopes of the metadata, devshell and gsutil
	// front-ends.
	Scopes []string
	// ProjectID is served as the project by the metadata and devshell
	// front-ends; empty means none.
	ProjectID string
	// Zone is the metadata server's instance/zone, e.g.
	// "projects/0/zones/europe-west1-b". Empty leaves it out: a zone is
	// never invented, since tools derive regions from it.
	Zone string
	// Frontends says which front-ends to run.
	Frontends Frontends
	// ParentEnv is the environment the child's is derived from.
	ParentEnv []string
	// TempDir is where the session's private directory is made;
	// os.TempDir() when empty.
	TempDir string
	// Logger gets the session's warnings; slog.Default() when nil.
	Logger *slog.Logger
	// Tools configures the git, docker and firebase integrations.
	Tools Tools
	// Anonymous runs the child with no credential: no front-end, no
	// Broker needed, git and docker untouched, BOTO_CONFIG empty.
	Anonymous bool

	// The fields below let a long-lived daemon host sessions that outlive
	// its own restarts; see daemon.go.

	// Dir, when set, is the session's directory, created 0700 if missing
	// and reused as it is otherwise; TempDir and the stale sweep are then
	// not used.
	Dir string
	// Ports fixes the front-ends' ports; zero ones are picked freely.
	Ports Ports
	// LocalAuthSecret is local_auth's secret; random when empty.
	LocalAuthSecret []byte
	// AllowPeer decides which connections the front-ends without a secret
	// (metadata, devshell) serve; nil means processes of this user.
	AllowPeer func(net.Conn) bool
	// WrapTokens, when set, gives each front-end (by its Endpoint name)
	// the token core it asks instead of Broker itself.
	WrapTokens func(frontend string, t Tokens) Tokens
}

// Endpoint describes a running front-end, for humans and for the demo.
type Endpoint struct {
	Name string // "local_auth", "gcemeta", "devshell", ...
	Addr string // "127.0.0.1:PORT"
}

// Session is a started credential context.
type Session struct {
	// Dir is the session's private directory.
	Dir string
	// Env is the child's environment.
	Env []string
	// Endpoints lists the running front-ends in start order.
	Endpoints []Endpoint
	// LUCIContext is the path of the exported LUCI_CONTEXT file, or "".
	LUCIContext string
	// LocalAuth is the local_auth section given to the child, nil when
	// local_auth is off.
	LocalAuth *lucictx.LocalAuth
	// Anonymous is set for a session started with Config.Anonymous.
	Anonymous bool
	// Helpers lists the tools configured to run credbroker as their
	// credential helper ("git", "docker"); they have no address.
	Helpers []string

	log     *slog.Logger
	closers []func() error
	once    sync.Once
	err     error

	keepFiles bool // set by Suspend
}

// Start starts the configured front-ends and prepares the child's
// environment. On failure everything started so far is closed again.
func Start(ctx context.Context, cfg Config) (_ *Session, err error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Anonymous {
		return startAnonymous(cfg)
	}
	if cfg.Broker == nil {
		return nil, errors.New("session: no broker")
	}
	if len(cfg.Accounts) == 0 {
		cfg.Accounts = []string{cfg.Broker.Default()}
	}
	if cfg.DefaultAccount == "" {
		cfg.DefaultAccount = cfg.Accounts[0]
	}
	email, err := cfg.Broker.Email(cfg.DefaultAccount)
	if err != nil {
		return nil, fmt.Errorf("session: %w", err)
	}

	dir, err := sessionDir(cfg)
	if err != nil {
		return nil, err
	}
	s := &Session{Dir: dir, Env: cleanEnv(cfg.ParentEnv, cfg.Frontends), log: cfg.Logger}
	s.closers = append(s.closers, func() error {
		if s.keepFiles {
			return nil
		}
		return os.RemoveAll(dir)
	})
	defer func() {
		if err != nil {
			s.Close()
		}
	}()

	if cfg.Frontends.LocalAuth {
		if err := s.startLocalAuth(ctx, cfg); err != nil {
			return nil, err
		}
	}
	if cfg.Frontends.GCEMeta {
		if err := s.startGCEMeta(ctx, cfg, email); err != nil {
			return nil, err
		}
	}
	if cfg.Frontends.Devshell {
		if err := s.startDevshell(ctx, cfg, email); err != nil {
			return nil, err
		}
	}
	if cfg.Frontends.Gsutil {
		if err := s.startGsutil(ctx, cfg); err != nil {
			return nil, err
		}
	}
	if cfg.Frontends.Firebase {
		if err := s.startFirebase(ctx, cfg); err != nil {
			return nil, err
		}
	}
	if cfg.Frontends.Git {
		if err := s.startGit(cfg); err != nil {
			return nil, err
		}
	}
	if cfg.Frontends.Docker {
		if err := s.startDocker(cfg); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Close stops every front-end (ending open connections) and removes the
// session's files. Safe to call more than once.
func (s *Session) Close() error {
	s.once.Do(func() {
		var errs []error
		for i := len(s.closers) - 1; i >= 0; i-- {
			errs = append(errs, s.closers[i]())
		}
		s.err = errors.Join(errs...)
	})
	return s.err
}

func (s *Session) onClose(f func() error) { s.closers = append(s.closers, f) }

func (s *Session) startLocalAuth(ctx context.Context, cfg Config) error {
	accounts := make([]localauth.Account, len(cfg.Accounts))
	for i, id := range cfg.Accounts {
		accounts[i] = localauth.Account{ID: id}
	}
	srv := &localauth.Server{
		Tokens:         cfg.tokens("local_auth"),
		Accounts:       accounts,
		DefaultAccount: cfg.DefaultAccount,
		Port:           cfg.Ports.LocalAuth,
		Secret:         cfg.LocalAuthSecret,
		Logger:         cfg.Logger,
	}
	info, err := srv.Start(ctx)
	if err != nil {
		return fmt.Errorf("start local_auth: %w", err)
	}
	s.onClose(srv.Close)

	parent := parentLUCIContext(s.Env, cfg.Logger)
	s.LocalAuth = info.LocalAuth()
	path, err := parent.SetLocalAuth(s.LocalAuth).Export(s.Dir)
	if err != nil {
		return fmt.Errorf("write LUCI_CONTEXT: %w", err)
	}
	s.LUCIContext = path
	s.Env = lucictx.SetInEnv(s.Env, path)
	s.Endpoints = append(s.Endpoints, Endpoint{Name: "local_auth", Addr: "127.0.0.1:" + strconv.Itoa(info.Port)})
	return nil
}

// parentLUCIContext loads the LUCI_CONTEXT the parent environment names,
// so its other sections reach the child. A broken file is reported and
// replaced by an empty context, as LUCI clients themselves do.
func parentLUCIContext(env []string, log *slog.Logger) *lucictx.Context {
	path, ok := lucictx.LookupEnv(env)
	if !ok || path == "" {
		return &lucictx.Context{}
	}
	c, warnings, err := lucictx.Load(path)
	for _, w := range warnings {
		log.Warn("parent LUCI_CONTEXT", "warning", w)
	}
	if err != nil {
		log.Warn("ignoring the parent LUCI_CONTEXT", "err", err)
		return &lucictx.Context{}
	}
	return c
}

func (s *Session) startGCEMeta(ctx context.Context, cfg Config, email string) error {
	accounts := []gcemeta.Account{{ID: cfg.DefaultAccount, Email: email, Scopes: cfg.Scopes}}
	// The other accounts are served by their email, as a VM serves its
	// extra service accounts; ids sharing an identity appear once.
	seen := map[string]bool{email: true, "": true}
	for _, id := range cfg.Accounts {
		if e, err := cfg.Broker.Email(id); err == nil && !seen[e] {
			seen[e] = true
			accounts = append(accounts, gcemeta.Account{ID: id, Email: e, Scopes: cfg.Scopes})
		}
	}
	host, _ := os.Hostname()
	name, _, _ := strings.Cut(host, ".")
	srv := &gcemeta.Server{
		Tokens:         cfg.tokens("gcemeta"),
		ProjectID:      cfg.ProjectID,
		InstanceName:   name,
		Hostname:       host,
		Zone:           cfg.Zone,
		Accounts:       accounts,
		DefaultAccount: cfg.DefaultAccount,
		Port:           cfg.Ports.GCEMeta,
		AllowPeer:      cfg.allowPeer(),
		Logger:         cfg.Logger,
	}
	info, err := srv.Start(ctx)
	if err != nil {
		return fmt.Errorf("start the metadata server: %w", err)
	}
	s.onClose(srv.Close)
	env := Env(s.Env)
	for _, kv := range info.Env() {
		k, v, _ := strings.Cut(kv, "=")
		env.Set(k, v)
	}
	// A fresh gcloud configuration: gcloud caches its "on GCE?" answer for
	// ten minutes in CLOUDSDK_CONFIG, and a user's stored login would win
	// over the metadata server.
	gcloudDir := filepath.Join(s.Dir, "gcloud")
	if err := os.Mkdir(gcloudDir, 0o700); err != nil && !(cfg.Dir != "" && errors.Is(err, os.ErrExist)) {
		return fmt.Errorf("create gcloud config dir: %w", err)
	}
	env.Set("CLOUDSDK_CONFIG", gcloudDir)
	s.Env = env
	s.Endpoints = append(s.Endpoints, Endpoint{Name: "gcemeta", Addr: info.Addr})
	return nil
}

func (s *Session) startDevshell(ctx context.Context, cfg Config, email string) error {
	srv := &devshell.Server{
		Tokens:    cfg.tokens("devshell"),
		Account:   cfg.DefaultAccount,
		Email:     email,
		ProjectID: cfg.ProjectID,
		Scopes:    cfg.Scopes,
		Port:      cfg.Ports.Devshell,
		AllowPeer: cfg.allowPeer(),
		Logger:    cfg.Logger,
	}
	info, err := srv.Start(ctx)
	if err != nil {
		return fmt.Errorf("start the devshell server: %w", err)
	}
	s.onClose(srv.Close)
	env := Env(s.Env)
	for k, v := range info.Env() {
		env.Set(k, v)
	}
	s.Env = env
	s.Endpoints = append(s.Endpoints, Endpoint{Name: "devshell", Addr: "127.0.0.1:" + strconv.Itoa(info.Port)})
	return nil
}

func (s *Session) startGsutil(ctx context.Context, cfg Config) error {
	parent := Env(cfg.ParentEnv)
	getenv := func(k string) string { v, _ := parent.Get(k); return v }
	srv := &gsutil.Server{
		Tokens:  cfg.tokens("gsutil"),
		Account: cfg.DefaultAccount,
		Scopes:  cfg.Scopes,
		Dir:     s.Dir,
		Port:    cfg.Ports.Gsutil,
		Logger:  cfg.Logger,
	}
	// The user's own boto settings are found through the parent's
	// environment, which is not always this process's (daemon sessions).
	srv.UserConfig = gsutil.FindUserConfig(getenv)
	srv.SkipUserConfig = srv.UserConfig == ""
	if cfg.Frontends.BotoGCE {
		srv.Mode = gsutil.GCE
	}
	info, err := srv.Start(ctx)
	if err != nil {
		return fmt.Errorf("start the gsutil shim: %w", err)
	}
	s.onClose(srv.Close)
	env := Env(s.Env)
	for k, v := range info.Env() {
		env.Set(k, v)
	}
	for _, k := range info.Unset() {
		env.Unset(k)
	}
	s.Env = env
	if info.Port != 0 {
		s.Endpoints = append(s.Endpoints, Endpoint{Name: "gsutil", Addr: "127.0.0.1:" + strconv.Itoa(info.Port)})
	}
	return nil
}

// cleanEnv copies the parent environment without the variables that would
// make clients use some other credential than the session's.
func cleanEnv(parent []string, fe Frontends) []string {
	env := Env(append([]string(nil), parent...))
	for _, k := range []string{
		"GOOGLE_APPLICATION_CREDENTIALS",
		"CLOUDSDK_AUTH_ACCESS_TOKEN_FILE",
		"CLOUDSDK_CORE_ACCOUNT",
		"NO_GCE_CHECK",
		"BOTO_PATH",
	} {
		env.Unset(k)
	}
	if !fe.Devshell {
		env.Unset("DEVSHELL_CLIENT_PORT")
	}
	return env
}

// samePeerUser is the policy for front-ends whose protocol carries no
// secret (metadata, devshell): only processes of this user are served.
// Where the platform cannot tell a peer's uid, the check is left off
// rather than refusing everyone.
func samePeerUser() func(net.Conn) bool {
	if !loopback.PeerUIDSupported {
		return nil
	}
	return loopback.SameUser
}

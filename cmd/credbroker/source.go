package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"credbroker/broker"
	"credbroker/sources/dev"
	"credbroker/sources/impersonate"
	"credbroker/sources/lucicontext"
	"credbroker/sources/metadata"
	"credbroker/sources/serviceaccount"
	"credbroker/sources/userlogin"
	"credbroker/tokencache"

	gcemetadata "cloud.google.com/go/compute/metadata"
	"github.com/urfave/cli/v2"
)

// credential is the source chosen for this process and why.
type credential struct {
	src       broker.Source // nil: none (--login-mode=optional found nothing)
	kind      string        // "dev", "service-account", "user-login", "authorized-user", "luci-context", "gce-metadata", "impersonation", "none"
	detail    string        // e.g. the key file
	selection string        // which flag or variable chose it
	projectID string
	// considered lists what auto-selection looked at before the choice,
	// and why it moved on; `credbroker info` shows it.
	considered []string
}

// flagReader is the part of *cli.Context that credential selection reads,
// so the demo can force the dev source.
type flagReader interface {
	Bool(name string) bool
	String(name string) string
	IsSet(name string) bool
}

// selector chooses a credential. Its environment is injected so the
// auto-selection table can be tested without touching the process's.
type selector struct {
	flags   flagReader
	getenv  func(string) string
	environ []string
	log     *slog.Logger
	onGCE   func() bool
	isTTY   func() bool
	// cache is opened on first use, so sources that need none leave no
	// files behind.
	cache *tokencache.Cache
}

// selectCredential picks the credential source (README, "Choosing the
// credential"): an explicit flag, then an upstream LUCI_CONTEXT, then
// application default credentials, then a stored login, then (only with
// --gce-allow-as-default) a metadata server. With nothing usable it fails
// with a message that lists what was tried and how to give a credential.
func selectCredential(c flagReader, log *slog.Logger) (*credential, error) {
	s, _ := newSelector(c, log)
	return s.choose()
}

// newSelector returns a selector on this process's environment.
func newSelector(c flagReader, log *slog.Logger) (*selector, error) {
	return &selector{
		flags: c, getenv: os.Getenv, environ: os.Environ(), log: log,
		onGCE: gcemetadata.OnGCE,
		isTTY: func() bool { return isTerminal(os.Stdin) && isTerminal(os.Stderr) },
	}, nil
}

func (s *selector) choose() (*credential, error) {
	cred, err := s.chooseBase()
	if err != nil || cred.src == nil {
		return cred, err
	}
	return s.impersonate(cred)
}

func (s *selector) chooseBase() (*credential, error) {
	spec := s.flags.String("source")
	if spec == "auto" {
		spec = ""
	}
	explicit := 0
	for _, set := range []bool{s.flags.Bool("dev"), s.flags.String("service-account-json") != "", spec != ""} {
		if set {
			explicit++
		}
	}
	if explicit > 1 {
		return nil, usageError("give one of --dev, --service-account-json and --source, not several")
	}
	switch {
	case s.flags.Bool("dev"):
		return s.fromSpec("dev", "--dev")
	case s.flags.String("service-account-json") == ":gce":
		// luci-auth's spelling for "the metadata server".
		return s.fromSpec("gce", "--service-account-json :gce")
	case s.flags.String("service-account-json") != "":
		return s.fromSpec("key:"+s.flags.String("service-account-json"), "--service-account-json")
	case spec != "":
		return s.fromSpec(spec, "--source "+spec)
	}
	return s.auto()
}

// auto is the auto-selection order.
func (s *selector) auto() (*credential, error) {
	var considered []string
	found := func(c *credential, err error) (*credential, error) {
		if c != nil {
			c.considered = considered
		}
		return c, err
	}

	// 1. An upstream LUCI_CONTEXT: we run inside another context.
	src, up, err := lucicontext.FromEnv(s.environ, s.flags.String("upstream-account"))
	switch {
	case err == nil:
		return found(luciCredential(src, up, "LUCI_CONTEXT"), nil)
	case !errors.Is(err, lucicontext.ErrNoContext):
		return nil, brokerError(fmt.Errorf("the upstream LUCI_CONTEXT is not usable: %w", err))
	case s.flags.String("upstream-account") != "":
		return nil, usageError("--upstream-account needs an upstream LUCI_CONTEXT: %v", err)
	}
	considered = append(considered, "LUCI_CONTEXT: "+strings.TrimPrefix(err.Error(), lucicontext.ErrNoContext.Error()+": "))

	// 2. Application default credentials: the variable, else gcloud's file.
	if path := s.getenv("GOOGLE_APPLICATION_CREDENTIALS"); path != "" {
		c, err := s.fromFile(path, "GOOGLE_APPLICATION_CREDENTIALS")
		if err != nil {
			return nil, noCredential(fmt.Sprintf("GOOGLE_APPLICATION_CREDENTIALS=%s is not usable: %v", path, err), considered)
		}
		return found(c, nil)
	}
	if path := s.wellKnownADC(); path != "" {
		if _, err := os.Stat(path); err == nil {
			c, err := s.fromFile(path, "gcloud's application default credentials")
			if err != nil {
				return nil, noCredential(fmt.Sprintf("%s is not usable: %v", path, err), considered)
			}
			return found(c, nil)
		}
		considered = append(considered, "application default credentials: GOOGLE_APPLICATION_CREDENTIALS unset, no "+path)
	}

	// 3. A login stored by `credbroker login`.
	c, err := s.storedLogin("stored login")
	if err == nil {
		return found(c, nil)
	}
	if !errors.Is(err, userlogin.ErrLoginRequired) {
		return nil, brokerError(err)
	}
	considered = append(considered, "stored login: "+err.Error())

	// 4. A metadata server, only when allowed: on a VM it would silently
	// hand out the VM's identity.
	if s.flags.Bool("gce-allow-as-default") {
		if s.onGCE() {
			c, err := s.fromSpec("gce", "--gce-allow-as-default")
			if err != nil {
				return nil, err
			}
			return found(c, nil)
		}
		considered = append(considered, "metadata server: not on GCE and GCE_METADATA_HOST is unset")
	} else {
		considered = append(considered, "metadata server: only with --gce-allow-as-default")
	}

	// 5. Nothing: the login mode decides.
	switch mode := s.flags.String("login-mode"); mode {
	case "", "silent":
	case "interactive":
		if !s.isTTY() {
			considered = append(considered, "interactive login: stdin or stderr is not a terminal")
			break
		}
		cfg, cache, err := s.oauth()
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		if _, err := userlogin.Login(ctx, cfg, cache, userlogin.LoginOptions{Out: os.Stderr, In: os.Stdin, Logger: s.log}); err != nil {
			return nil, brokerError(err)
		}
		return found(s.storedLogin("--login-mode=interactive"))
	case "optional":
		return found(&credential{kind: "none", detail: "no credential found; running without one", selection: "--login-mode=optional"}, nil)
	default:
		return nil, usageError("--login-mode %q: want silent, interactive or optional", mode)
	}
	return nil, noCredential("", considered)
}

// fromSpec builds the credential a --source or --account spec names.
func (s *selector) fromSpec(spec, selection string) (*credential, error) {
	kind, arg, _ := strings.Cut(spec, ":")
	switch kind {
	case "dev":
		src, err := dev.New(dev.Options{})
		if err != nil {
			return nil, brokerError(err)
		}
		s.log.Warn(src.Warning())
		return &credential{src: src, kind: "dev", detail: src.Email(), selection: selection}, nil
	case "key":
		if arg == "" {
			return nil, usageError("%s: key: needs a file, as in key:/path/key.json", selection)
		}
		c, err := s.fromFile(arg, selection)
		if err != nil {
			return nil, brokerError(err)
		}
		return c, nil
	case "login":
		c, err := s.storedLogin(selection)
		if err != nil {
			return nil, brokerError(err)
		}
		return c, nil
	case "luci":
		src, up, err := lucicontext.FromEnv(s.environ, cmpOr(arg, s.flags.String("upstream-account")))
		if err != nil {
			return nil, brokerError(fmt.Errorf("%s: %w", selection, err))
		}
		return luciCredential(src, up, selection), nil
	case "gce":
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		src, err := metadata.New(ctx, metadata.Options{Host: s.getenv(metadata.HostEnv), Account: arg})
		if err != nil {
			return nil, brokerError(fmt.Errorf("%s: %w", selection, err))
		}
		return &credential{src: src, kind: "gce-metadata", detail: fmt.Sprintf("%s at %s", src.Email(), src.Host()), selection: selection}, nil
	case "adc":
		path := cmpOr(s.getenv("GOOGLE_APPLICATION_CREDENTIALS"), s.wellKnownADC())
		if path == "" {
			return nil, brokerError(fmt.Errorf("%s: no GOOGLE_APPLICATION_CREDENTIALS and no home directory", selection))
		}
		c, err := s.fromFile(path, selection)
		if err != nil {
			return nil, brokerError(err)
		}
		return c, nil
	}
	return nil, usageError("%s: unknown credential %q; want dev, key:PATH, login, luci[:ACCOUNT], gce[:ACCOUNT] or adc", selection, spec)
}

func luciCredential(src broker.Source, up lucicontext.Upstream, selection string) *credential {
	return &credential{src: src, kind: "luci-context",
		detail:    fmt.Sprintf("account %q of the local_auth server on port %d (%s)", up.Account, up.Port, up.Path),
		selection: selection}
}

// fromFile uses a Google credential file: a service-account key or an
// authorized-user file.
func (s *selector) fromFile(path, selection string) (*credential, error) {
	kind, err := keyFileType(path)
	if err != nil {
		return nil, err
	}
	switch kind {
	case "service_account":
		src, err := serviceaccount.FromFile(path, serviceaccount.Options{})
		if err != nil {
			return nil, err
		}
		return &credential{src: src, kind: "service-account", detail: path, selection: selection, projectID: src.ProjectID()}, nil
	case "authorized_user":
		src, err := userlogin.FromAuthorizedUser(path, userlogin.Options{AllowOtherScopes: s.flags.Bool("user-allow-any-scope"), Logger: s.log})
		if err != nil {
			return nil, err
		}
		return &credential{src: src, kind: "authorized-user", detail: path, selection: selection}, nil
	}
	return nil, fmt.Errorf("its type is %q, and only service_account and authorized_user files are supported", kind)
}

// wellKnownADC is where gcloud writes application default credentials.
func (s *selector) wellKnownADC() string {
	if dir := s.getenv("CLOUDSDK_CONFIG"); dir != "" {
		return filepath.Join(dir, "application_default_credentials.json")
	}
	if home := s.getenv("HOME"); home != "" {
		return filepath.Join(home, ".config", "gcloud", "application_default_credentials.json")
	}
	return ""
}

// storedLogin uses the login kept in the token cache. It wraps
// userlogin.ErrLoginRequired when there is none, without creating any file.
func (s *selector) storedLogin(selection string) (*credential, error) {
	if s.flags.String("cache") != "memory" && s.cache == nil {
		dir, err := s.cacheDir()
		if err != nil {
			return nil, err
		}
		if _, err := os.Stat(filepath.Join(dir, tokencache.DataFile)); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: none in %s; run `credbroker login`", userlogin.ErrLoginRequired, dir)
		}
	}
	cfg, cache, err := s.oauth()
	if err != nil {
		return nil, err
	}
	src, err := userlogin.New(cfg, cache, userlogin.Options{AllowOtherScopes: s.flags.Bool("user-allow-any-scope"), Logger: s.log})
	if err != nil {
		return nil, err
	}
	return &credential{src: src, kind: "user-login", detail: fmt.Sprintf("%s (OAuth client %s, scopes %s)", src.Email(), src.ClientID(), shortScopes(src.Scopes())), selection: selection}, nil
}

func (s *selector) cacheDir() (string, error) {
	if dir := s.flags.String("cache-dir"); dir != "" {
		return dir, nil
	}
	if x := s.getenv("XDG_CONFIG_HOME"); x != "" {
		return filepath.Join(x, "credbroker"), nil
	}
	return tokencache.DefaultDir()
}

// oauth returns the user-login configuration from the flags and the
// token cache they name.
func (s *selector) oauth() (userlogin.Config, *tokencache.Cache, error) {
	cfg := userlogin.Config{
		ClientID:     s.flags.String("oauth-client-id"),
		ClientSecret: s.flags.String("oauth-client-secret"),
		AuthURL:      s.flags.String("oauth-auth-url"),
		TokenURL:     s.flags.String("oauth-token-url"),
		RevokeURL:    s.flags.String("oauth-revoke-url"),
	}
	if s.cache != nil {
		return cfg, s.cache, nil
	}
	switch mode := s.flags.String("cache"); mode {
	case "memory":
		s.cache = tokencache.Memory()
	case "", "disk":
		dir, err := s.cacheDir()
		if err != nil {
			return cfg, nil, brokerError(err)
		}
		c, err := tokencache.Open(dir, s.log)
		if err != nil {
			return cfg, nil, brokerError(err)
		}
		s.cache = c
	default:
		return cfg, nil, usageError("--cache %q: want disk or memory", mode)
	}
	return cfg, s.cache, nil
}

// impersonate wraps cred when --act-as-service-account asks for it.
func (s *selector) impersonate(cred *credential) (*credential, error) {
	target := s.flags.String("act-as-service-account")
	if target == "" {
		if s.flags.String("delegates") != "" {
			return nil, usageError("--delegates needs --act-as-service-account")
		}
		return cred, nil
	}
	var delegates []string
	for _, d := range strings.Split(s.flags.String("delegates"), ",") {
		if d = strings.TrimSpace(d); d != "" {
			delegates = append(delegates, d)
		}
	}
	src, err := impersonate.New(cred.src, target, impersonate.Options{Endpoint: s.flags.String("iam-endpoint"), Delegates: delegates})
	if err != nil {
		return nil, usageError("%v", err)
	}
	detail := fmt.Sprintf("%s through the IAM Credentials API, as %s (%s)", target, cred.kind, cred.detail)
	if len(delegates) > 0 {
		detail += ", delegates " + strings.Join(delegates, " ")
	}
	return &credential{src: src, kind: "impersonation", detail: detail,
		selection: "--act-as-service-account; base chosen by " + cred.selection, considered: cred.considered}, nil
}

// isTerminal reports whether f is a character device, as a terminal is.
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// keyFileType reads only the "type" field of a Google credential file.
func keyFileType(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	var f struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		return "", errors.New("it is not a JSON credential file")
	}
	return f.Type, nil
}

// noCredential explains that nothing was found: the reason, what
// auto-selection looked at, and every way to give a credential.
func noCredential(reason string, considered []string) error {
	var b strings.Builder
	if reason != "" {
		b.WriteString(reason + "\n")
	}
	b.WriteString("no credential to serve")
	if len(considered) > 0 {
		b.WriteString("; looked at, in order:\n")
		for _, c := range considered {
			b.WriteString("  - " + c + "\n")
		}
	} else {
		b.WriteString("\n")
	}
	b.WriteString("give one of:\n" +
		"  credbroker login                       log in as yourself (once; kept encrypted in your config directory)\n" +
		"  --service-account-json PATH            a service-account key file\n" +
		"  GOOGLE_APPLICATION_CREDENTIALS=PATH    a key or authorized-user file, from the environment\n" +
		"  --source luci | gce | adc | key:PATH   an upstream LUCI_CONTEXT, a metadata server, gcloud's ADC file, a key\n" +
		"  --gce-allow-as-default                 use the metadata server when on GCE\n" +
		"  --dev                                  the embedded offline dev identity (not Google tokens)")
	return cli.Exit(b.String(), exitError)
}

// newBroker builds the process's token core serving cred under ids.
func newBroker(cred *credential, ids []string, def string, log *slog.Logger) (*broker.Broker, error) {
	return newBrokerWith(cred, ids, def, nil, log)
}

// newBrokerWith builds the token core: cred serves every id in ids except
// those given their own credential in perAccount.
func newBrokerWith(cred *credential, ids []string, def string, perAccount map[string]*credential, log *slog.Logger) (*broker.Broker, error) {
	b := broker.New(broker.Options{Logger: log})
	for _, id := range ids {
		c := cred
		if pc, ok := perAccount[id]; ok {
			c = pc
		}
		if err := b.AddAccount(id, c.src); err != nil {
			b.Close()
			return nil, err
		}
	}
	if err := b.SetDefault(def); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

package session

import (
	"fmt"
	"os"
	"path/filepath"

	"credbroker/lucictx"
	"credbroker/shims/firebase"
)

// startAnonymous prepares a child that runs with no credential at all: no
// token server, and nothing inherited that would hand it someone's
// tokens. git and docker are left as the user configured them.
func startAnonymous(cfg Config) (_ *Session, err error) {
	RemoveStale(cfg.TempDir, cfg.Logger)
	dir, err := makePrivateDir(cfg.TempDir)
	if err != nil {
		return nil, err
	}
	s := &Session{Dir: dir, Env: cleanEnv(cfg.ParentEnv, Frontends{}), Anonymous: true, log: cfg.Logger}
	s.closers = append(s.closers, func() error { return os.RemoveAll(dir) })
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	env := Env(s.Env)
	// Token servers a parent session may have pointed us at.
	for _, k := range []string{"GCE_METADATA_HOST", "GCE_METADATA_IP", "GCE_METADATA_ROOT", firebase.EnvToken, firebase.EnvTokenURL} {
		env.Unset(k)
	}
	// Set but empty: gsutil then reads no .boto at all, not ~/.boto.
	env.Set("BOTO_CONFIG", "")
	// A fresh gcloud configuration, without the user's stored login.
	gcloudDir := filepath.Join(dir, "gcloud")
	if err := os.Mkdir(gcloudDir, 0o700); err != nil {
		return nil, fmt.Errorf("create gcloud config dir: %w", err)
	}
	env.Set("CLOUDSDK_CONFIG", gcloudDir)

	// Keep the parent's LUCI_CONTEXT sections except local_auth.
	parent := parentLUCIContext(env, cfg.Logger)
	if _, ok := parent.Raw(lucictx.LocalAuthSection); ok {
		parent = parent.Delete(lucictx.LocalAuthSection)
		if parent.Empty() {
			env = lucictx.RemoveFromEnv(env)
		} else {
			path, err := parent.Export(dir)
			if err != nil {
				return nil, fmt.Errorf("write LUCI_CONTEXT: %w", err)
			}
			s.LUCIContext = path
			env = lucictx.SetInEnv(env, path)
		}
	}
	s.Env = env
	return s, nil
}

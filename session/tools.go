package session

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"

	"credbroker/shims/docker"
	"credbroker/shims/firebase"
	"credbroker/shims/git"
)

// Tools configures the integrations with git, docker and firebase-tools.
type Tools struct {
	// GitHosts are the host patterns git gets the session's tokens for;
	// git.DefaultHosts when empty.
	GitHosts []string
	// GerritHosts get git's "/a/" rewrite.
	GerritHosts []string
	// DockerRegistries are the registries docker gets the session's
	// tokens for; docker.DefaultRegistries when empty.
	DockerRegistries []string
	// Executable is the credbroker binary git and docker run as their
	// credential helper; os.Executable() when empty.
	Executable string
}

func (t Tools) executable() (string, error) {
	if t.Executable != "" {
		return t.Executable, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("cannot find the credbroker binary for the credential helpers: %w", err)
	}
	return exe, nil
}

// startFirebase serves firebase-tools' token endpoint with the session's
// scopes plus the firebase scope.
func (s *Session) startFirebase(ctx context.Context, cfg Config) error {
	scopes := slices.Clone(cfg.Scopes)
	if len(scopes) == 0 {
		scopes = []string{"https://www.googleapis.com/auth/cloud-platform", "https://www.googleapis.com/auth/userinfo.email"}
	}
	if !slices.Contains(scopes, firebase.Scope) {
		scopes = append(scopes, firebase.Scope)
	}
	srv := &firebase.Server{Tokens: cfg.tokens("firebase"), Account: cfg.DefaultAccount, Scopes: scopes, Logger: cfg.Logger}
	info, err := srv.Start(ctx)
	if err != nil {
		return fmt.Errorf("start the firebase token endpoint: %w", err)
	}
	s.onClose(srv.Close)
	env := Env(s.Env)
	for k, v := range info.Env() {
		env.Set(k, v)
	}
	s.Env = env
	s.Endpoints = append(s.Endpoints, Endpoint{Name: "firebase", Addr: "127.0.0.1:" + strconv.Itoa(info.Port)})
	return nil
}

// startGit hands git the helper configuration through the environment.
// The helper gets its tokens through the child's LUCI_CONTEXT, so it
// needs local_auth.
func (s *Session) startGit(cfg Config) error {
	if s.LocalAuth == nil {
		s.log.Warn("git is not configured: its credential helper needs local_auth")
		return nil
	}
	exe, err := cfg.Tools.executable()
	if err != nil {
		return err
	}
	entries := git.Config{Executable: exe, Hosts: cfg.Tools.GitHosts, GerritHosts: cfg.Tools.GerritHosts}.Entries()
	env := Env(s.Env)
	if err := git.AppendEnv(&env, entries); err != nil {
		return err
	}
	s.Env = env
	s.Helpers = append(s.Helpers, "git")
	return nil
}

// startDocker gives docker a private DOCKER_CONFIG that maps the
// registries to the helper, and the helper on PATH.
func (s *Session) startDocker(cfg Config) error {
	if s.LocalAuth == nil {
		s.log.Warn("docker is not configured: its credential helper needs local_auth")
		return nil
	}
	exe, err := cfg.Tools.executable()
	if err != nil {
		return err
	}
	parent := Env(cfg.ParentEnv)
	getenv := func(k string) string { v, _ := parent.Get(k); return v }
	info, err := docker.Setup{
		Dir:        s.Dir,
		UserDir:    docker.UserConfigDir(getenv),
		Registries: cfg.Tools.DockerRegistries,
		Executable: exe,
	}.Prepare()
	if err != nil {
		return err
	}
	env := Env(s.Env)
	path, _ := env.Get(docker.EnvPath)
	env.Set(docker.EnvPath, docker.PrependPath(info.BinDir, path))
	env.Set(docker.EnvConfig, info.ConfigDir)
	s.Env = env
	s.Helpers = append(s.Helpers, "docker")
	return nil
}

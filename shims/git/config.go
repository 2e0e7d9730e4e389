package git

import (
	"fmt"
	"strconv"
	"strings"
)

// Environment variables the session sets for git.
const (
	// EnvConfigCount and the numbered keys and values carry
	// configuration to git without any file.
	EnvConfigCount = "GIT_CONFIG_COUNT"
	// EnvTerminalPrompt=0 makes git fail instead of waiting for a
	// password on a terminal nobody watches.
	EnvTerminalPrompt = "GIT_TERMINAL_PROMPT"
)

// Config describes what a session tells git.
type Config struct {
	// Executable is the credbroker binary git runs as its helper.
	Executable string
	// Hosts are the host patterns whose credentials the helper gives;
	// DefaultHosts when empty.
	Hosts []string
	// GerritHosts get the "/a/" rewrite; exact host names.
	GerritHosts []string
}

// Entry is one configuration key and value.
type Entry struct{ Key, Value string }

// Entries returns the configuration, in the order git must read it.
func (c Config) Entries() []Entry {
	hosts := c.Hosts
	if len(hosts) == 0 {
		hosts = DefaultHosts
	}
	var out []Entry
	for _, h := range hosts {
		key := "credential.https://" + h + ".helper"
		out = append(out,
			Entry{key, ""},
			Entry{key, "!" + ShellQuote(c.Executable) + " git-credential --host " + ShellQuote(h)},
		)
	}
	for _, g := range c.GerritHosts {
		key := "url.https://" + g + "/a/.insteadOf"
		out = append(out, Entry{key, "https://" + g + "/a/"}, Entry{key, "https://" + g + "/"})
	}
	return out
}

// Env is the part of an environment AppendEnv needs.
type Env interface {
	Get(key string) (string, bool)
	Set(key, value string)
}

// AppendEnv adds entries after the GIT_CONFIG_<n> entries env already has,
// and sets GIT_TERMINAL_PROMPT=0.
func AppendEnv(env Env, entries []Entry) error {
	n := 0
	if v, ok := env.Get(EnvConfigCount); ok && v != "" {
		var err error
		n, err = strconv.Atoi(v)
		if err != nil || n < 0 {
			return fmt.Errorf("git: the environment's %s=%q is not a count", EnvConfigCount, v)
		}
	}
	for i, e := range entries {
		env.Set("GIT_CONFIG_KEY_"+strconv.Itoa(n+i), e.Key)
		env.Set("GIT_CONFIG_VALUE_"+strconv.Itoa(n+i), e.Value)
	}
	env.Set(EnvConfigCount, strconv.Itoa(n+len(entries)))
	env.Set(EnvTerminalPrompt, "0")
	return nil
}

// ShellQuote quotes s for a POSIX shell, which is how git runs a helper
// whose command starts with "!".
func ShellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

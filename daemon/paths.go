package daemon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// Paths are where the daemon keeps its socket, state and key.
type Paths struct {
	// Runtime holds the admin socket and the sessions' directories.
	Runtime string
	// State holds the database and the audit log.
	State string
	// Config holds the key file.
	Config string
}

// DefaultPaths follows the XDG base directory rules: $XDG_RUNTIME_DIR,
// $XDG_STATE_HOME and $XDG_CONFIG_HOME with "credbroker" appended, else
// a per-user directory under the temporary directory, ~/.local/state and
// ~/.config.
func DefaultPaths(getenv func(string) string) (Paths, error) {
	var p Paths
	if d := getenv("XDG_RUNTIME_DIR"); filepath.IsAbs(d) {
		p.Runtime = filepath.Join(d, "credbroker")
	} else {
		tmp := getenv("TMPDIR")
		if !filepath.IsAbs(tmp) {
			tmp = "/tmp"
		}
		p.Runtime = filepath.Join(tmp, "credbroker-"+strconv.Itoa(os.Getuid()))
	}
	home := getenv("HOME")
	if d := getenv("XDG_STATE_HOME"); filepath.IsAbs(d) {
		p.State = filepath.Join(d, "credbroker")
	} else if filepath.IsAbs(home) {
		p.State = filepath.Join(home, ".local", "state", "credbroker")
	}
	if d := getenv("XDG_CONFIG_HOME"); filepath.IsAbs(d) {
		p.Config = filepath.Join(d, "credbroker")
	} else if filepath.IsAbs(home) {
		p.Config = filepath.Join(home, ".config", "credbroker")
	}
	if p.State == "" || p.Config == "" {
		return p, errors.New("daemon: neither XDG_STATE_HOME/XDG_CONFIG_HOME nor HOME is set")
	}
	return p, nil
}

// Socket is the admin socket's path.
func (p Paths) Socket() string { return filepath.Join(p.Runtime, "admin.sock") }

// Database is the session store's path.
func (p Paths) Database() string { return filepath.Join(p.State, "state.db") }

// AuditLog is the audit log's path.
func (p Paths) AuditLog() string { return filepath.Join(p.State, "audit.log") }

// KeyFile is the path of the key that seals session tokens at rest.
func (p Paths) KeyFile() string { return filepath.Join(p.Config, "key") }

// SessionsDir holds one private directory per session.
func (p Paths) SessionsDir() string { return filepath.Join(p.Runtime, "sessions") }

// privateDir makes dir (and missing parents, the last one 0700) and
// checks that it belongs to this user and is closed to others; a
// directory someone else controls would let them swap the socket.
func privateDir(dir string) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("daemon: %w", err)
	}
	info, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	st, ok := info.Sys().(*syscall.Stat_t)
	switch {
	case !info.IsDir():
		return fmt.Errorf("daemon: %s is not a directory", dir)
	case !ok || int(st.Uid) != os.Getuid():
		return fmt.Errorf("daemon: %s belongs to another user", dir)
	case info.Mode().Perm()&0o077 != 0:
		return fmt.Errorf("daemon: %s is open to other users (mode %v); make it 0700", dir, info.Mode().Perm())
	}
	return nil
}

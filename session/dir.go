package session

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// dirPrefix starts the name of every session directory, followed by the
// broker's pid, so a later broker can tell which ones a dead broker left.
const dirPrefix = "credbroker-"

// makePrivateDir creates a fresh 0700 directory for one session under
// parent, named credbroker-<pid>-<random>.
func makePrivateDir(parent string) (string, error) {
	if parent == "" {
		parent = os.TempDir()
	}
	dir, err := os.MkdirTemp(parent, fmt.Sprintf("%s%d-", dirPrefix, os.Getpid()))
	if err != nil {
		return "", fmt.Errorf("create session directory: %w", err)
	}
	// MkdirTemp already uses 0700; make it explicit against odd umasks.
	if err := os.Chmod(dir, 0o700); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("create session directory: %w", err)
	}
	return dir, nil
}

// RemoveStale deletes session directories under parent that belong to
// this user and to a broker process that no longer runs (one killed
// before it could clean up). It returns how many it removed.
func RemoveStale(parent string, log *slog.Logger) int {
	if parent == "" {
		parent = os.TempDir()
	}
	entries, err := os.ReadDir(parent)
	if err != nil {
		return 0
	}
	removed := 0
	for _, e := range entries {
		pid, ok := ownerPID(e.Name())
		if !ok || !e.IsDir() || processAlive(pid) {
			continue
		}
		path := filepath.Join(parent, e.Name())
		info, err := os.Lstat(path)
		if err != nil || !ownedByMe(info) {
			continue
		}
		if err := os.RemoveAll(path); err != nil {
			log.Warn("could not remove a stale session directory", "dir", path, "err", err)
			continue
		}
		log.Info("removed a stale session directory", "dir", path, "pid", pid)
		removed++
	}
	return removed
}

// ownerPID parses the broker pid out of a session directory name.
func ownerPID(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, dirPrefix)
	if !ok {
		return 0, false
	}
	num, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	pid, err := strconv.Atoi(num)
	return pid, err == nil && pid > 0
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func ownedByMe(info os.FileInfo) bool {
	st, ok := info.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == os.Getuid()
}

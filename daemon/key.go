package daemon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"credbroker/authtoken"
)

// KeyEnv names the variable that gives the key directly (standard base64
// of 32 bytes), for deployments that keep it in a secret manager.
const KeyEnv = "CREDBROKER_KEY"

// LoadKey returns the key from the environment when set, else from path,
// creating the file (0600, O_EXCL) with a fresh key on first use. A key
// file readable by others is refused.
func LoadKey(getenv func(string) string, path string) ([]byte, error) {
	if v := getenv(KeyEnv); v != "" {
		k, err := authtoken.ParseKey(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("daemon: %s: %w", KeyEnv, err)
		}
		return k, nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return createKey(path)
	}
	if err != nil {
		return nil, fmt.Errorf("daemon: key file: %w", err)
	}
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("daemon: key file: %w", err)
	}
	if info.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("daemon: key file %s is readable by others (mode %v); make it 0600", path, info.Mode().Perm())
	}
	k, err := authtoken.ParseKey(strings.TrimSpace(string(data)))
	if err != nil {
		return nil, fmt.Errorf("daemon: key file %s: %w", path, err)
	}
	return k, nil
}

func createKey(path string) ([]byte, error) {
	if err := privateDir(filepath.Dir(path)); err != nil {
		return nil, err
	}
	k := authtoken.NewKey()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("daemon: key file: %w", err)
	}
	if _, err := f.WriteString(authtoken.FormatKey(k) + "\n"); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("daemon: key file: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("daemon: key file: %w", err)
	}
	return k, nil
}

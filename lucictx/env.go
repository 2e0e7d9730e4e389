package lucictx

import (
	"slices"
	"strings"
)

// SetInEnv returns a copy of env (KEY=VALUE entries) with LUCI_CONTEXT set
// to path. An existing entry is replaced where it stands, matching the key
// without regard to case as Windows does; any further entries for the key
// are removed so the child sees one value. Otherwise the entry is appended.
func SetInEnv(env []string, path string) []string {
	entry := EnvKey + "=" + path
	out := make([]string, 0, len(env)+1)
	replaced := false
	for _, kv := range env {
		if !isKey(kv) {
			out = append(out, kv)
			continue
		}
		if !replaced {
			out = append(out, entry)
			replaced = true
		}
	}
	if !replaced {
		out = append(out, entry)
	}
	return out
}

// RemoveFromEnv returns a copy of env without any LUCI_CONTEXT entry (key
// matched without regard to case).
func RemoveFromEnv(env []string) []string {
	return slices.DeleteFunc(slices.Clone(env), isKey)
}

// LookupEnv returns the value of the first LUCI_CONTEXT entry in env. The
// key is matched exactly, as a Unix process reads its environment.
func LookupEnv(env []string) (string, bool) {
	for _, kv := range env {
		if strings.HasPrefix(kv, EnvKey+"=") {
			return kv[len(EnvKey)+1:], true
		}
	}
	return "", false
}

func isKey(kv string) bool {
	return len(kv) > len(EnvKey) && kv[len(EnvKey)] == '=' && strings.EqualFold(kv[:len(EnvKey)], EnvKey)
}

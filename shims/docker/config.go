package docker

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// DefaultRegistries are the registries served when none are configured:
// Container Registry's hosts and Artifact Registry's docker hosts in
// every location.
var DefaultRegistries = append([]string{
	"gcr.io", "asia.gcr.io", "eu.gcr.io", "us.gcr.io", "marketplace.gcr.io", "staging-k8s.gcr.io",
}, artifactRegistryHosts()...)

func artifactRegistryHosts() []string {
	locations := []string{
		"africa-south1", "asia", "asia-east1", "asia-east2", "asia-northeast1", "asia-northeast2",
		"asia-northeast3", "asia-south1", "asia-south2", "asia-southeast1", "asia-southeast2",
		"australia-southeast1", "australia-southeast2", "europe", "europe-central2", "europe-north1",
		"europe-north2", "europe-southwest1", "europe-west1", "europe-west10", "europe-west12",
		"europe-west2", "europe-west3", "europe-west4", "europe-west6", "europe-west8", "europe-west9",
		"me-central1", "me-central2", "me-west1", "northamerica-northeast1", "northamerica-northeast2",
		"northamerica-south1", "southamerica-east1", "southamerica-west1", "us", "us-central1",
		"us-east1", "us-east4", "us-east5", "us-south1", "us-west1", "us-west2", "us-west3", "us-west4",
	}
	out := make([]string, len(locations))
	for i, l := range locations {
		out[i] = l + "-docker.pkg.dev"
	}
	return out
}

// Environment variables the session sets for docker.
const (
	// EnvConfig names the directory of config.json.
	EnvConfig = "DOCKER_CONFIG"
	// EnvPath gets the helper's directory first.
	EnvPath = "PATH"
)

// UserConfigDir is the directory of the user's own docker configuration:
// DOCKER_CONFIG, else ~/.docker; "" when neither can be told.
func UserConfigDir(getenv func(string) string) string {
	if d := getenv(EnvConfig); d != "" {
		return d
	}
	if h := getenv("HOME"); h != "" {
		return filepath.Join(h, ".docker")
	}
	return ""
}

// maxConfig bounds the user's config.json.
const maxConfig = 4 << 20

// MergeConfig returns the user's config.json (nil or empty for none) with
// every registry's credHelpers entry set to this helper. Everything else
// is kept as the user wrote it, unknown settings included.
func MergeConfig(user []byte, registries []string) ([]byte, error) {
	top := map[string]json.RawMessage{}
	if len(bytes.TrimSpace(user)) > 0 {
		if err := json.Unmarshal(user, &top); err != nil {
			return nil, fmt.Errorf("docker: the user's config.json: %w", err)
		}
		if top == nil { // "null"
			top = map[string]json.RawMessage{}
		}
	}
	helpers := map[string]string{}
	if raw, ok := top["credHelpers"]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &helpers); err != nil {
			return nil, fmt.Errorf("docker: the user's config.json credHelpers: %w", err)
		}
	}
	for _, r := range registries {
		helpers[r] = HelperName
	}
	raw, err := json.Marshal(helpers)
	if err != nil {
		return nil, err
	}
	top["credHelpers"] = raw
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "\t")
	if err := enc.Encode(top); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// ServedRegistries lists, sorted, the registries a config.json maps to
// this helper.
func ServedRegistries(config []byte) []string {
	var c struct {
		CredHelpers map[string]string `json:"credHelpers"`
	}
	if json.Unmarshal(config, &c) != nil {
		return nil
	}
	var out []string
	for r, h := range c.CredHelpers {
		if h == HelperName {
			out = append(out, r)
		}
	}
	sort.Strings(out)
	return out
}

// Setup describes the docker files of one session.
type Setup struct {
	// Dir is the session's private directory; the docker directory and
	// the bin directory are made in it.
	Dir string
	// UserDir is the user's docker directory (see UserConfigDir); "" for
	// none.
	UserDir string
	// Registries to serve; DefaultRegistries when empty.
	Registries []string
	// Executable is the credbroker binary the helper links to.
	Executable string
}

// Info is what the child's environment needs.
type Info struct {
	ConfigDir string // DOCKER_CONFIG
	BinDir    string // first on PATH
}

// Prepare makes the session's docker directory (0700) with config.json
// (0600), the links to the user's contexts and plugins, and the bin
// directory with the helper link.
func (s Setup) Prepare() (Info, error) {
	regs := s.Registries
	if len(regs) == 0 {
		regs = DefaultRegistries
	}
	var user []byte
	if s.UserDir != "" {
		f, err := os.Open(filepath.Join(s.UserDir, "config.json"))
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return Info{}, fmt.Errorf("docker: %w", err)
		default:
			user, err = readLimited(f)
			f.Close()
			if err != nil {
				return Info{}, fmt.Errorf("docker: %w", err)
			}
		}
	}
	merged, err := MergeConfig(user, regs)
	if err != nil {
		return Info{}, err
	}
	info := Info{ConfigDir: filepath.Join(s.Dir, "docker"), BinDir: filepath.Join(s.Dir, "bin")}
	for _, d := range []string{info.ConfigDir, info.BinDir} {
		if err := os.Mkdir(d, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return Info{}, fmt.Errorf("docker: %w", err)
		}
	}
	if err := writeNew(filepath.Join(info.ConfigDir, "config.json"), merged); err != nil {
		return Info{}, fmt.Errorf("docker: %w", err)
	}
	if s.UserDir != "" {
		for _, name := range []string{"contexts", "cli-plugins"} {
			target := filepath.Join(s.UserDir, name)
			if st, err := os.Stat(target); err == nil && st.IsDir() {
				if err := os.Symlink(target, filepath.Join(info.ConfigDir, name)); err != nil {
					return Info{}, fmt.Errorf("docker: %w", err)
				}
			}
		}
	}
	if err := os.Symlink(s.Executable, filepath.Join(info.BinDir, BinaryName)); err != nil {
		return Info{}, fmt.Errorf("docker: %w", err)
	}
	return info, nil
}

func readLimited(f *os.File) ([]byte, error) {
	var b bytes.Buffer
	if _, err := b.ReadFrom(io.LimitReader(f, maxConfig+1)); err != nil {
		return nil, err
	}
	if b.Len() > maxConfig {
		return nil, errors.New("config.json is too large")
	}
	return b.Bytes(), nil
}

// writeNew creates path (which must not exist) with mode 0600.
func writeNew(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// PrependPath puts dir first in a PATH value.
func PrependPath(dir, path string) string {
	if path == "" {
		return dir
	}
	return dir + string(os.PathListSeparator) + path
}

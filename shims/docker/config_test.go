package docker

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

func TestMergeConfig(t *testing.T) {
	tests := []struct {
		name, user, want string
	}{
		{"no user config", "", "{\n\t\"credHelpers\": {\n\t\t\"gcr.io\": \"credbroker\"\n\t}\n}\n"},
		{"null", "null", "{\n\t\"credHelpers\": {\n\t\t\"gcr.io\": \"credbroker\"\n\t}\n}\n"},
		{"user settings kept", `{"auths":{"ghcr.io":{"auth":"dTpw"},"gcr.io":{"auth":"b2xk"}},"credsStore":"desktop",` +
			`"credHelpers":{"123.dkr.ecr.us-east-1.amazonaws.com":"ecr-login","gcr.io":"gcloud"},"psFormat":"{{.ID}}<x>","proxies":{"default":{"httpProxy":"http://p:3128"}}}`,
			"{\n\t\"auths\": {\n\t\t\"ghcr.io\": {\n\t\t\t\"auth\": \"dTpw\"\n\t\t},\n\t\t\"gcr.io\": {\n\t\t\t\"auth\": \"b2xk\"\n\t\t}\n\t},\n" +
				"\t\"credHelpers\": {\n\t\t\"123.dkr.ecr.us-east-1.amazonaws.com\": \"ecr-login\",\n\t\t\"gcr.io\": \"credbroker\"\n\t},\n" +
				"\t\"credsStore\": \"desktop\",\n\t\"proxies\": {\n\t\t\"default\": {\n\t\t\t\"httpProxy\": \"http://p:3128\"\n\t\t}\n\t},\n" +
				"\t\"psFormat\": \"{{.ID}}<x>\"\n}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := MergeConfig([]byte(tt.user), []string{"gcr.io"})
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
	for _, bad := range []string{"[]", `{"credHelpers":[1]}`, "{"} {
		if _, err := MergeConfig([]byte(bad), []string{"gcr.io"}); err == nil {
			t.Errorf("MergeConfig(%q) accepted", bad)
		}
	}
}

func FuzzMergeConfig(f *testing.F) {
	f.Add(`{"auths":{"x":{}},"credHelpers":{"a":"b"}}`)
	f.Add(`{"credHelpers":null}`)
	f.Add(`null`)
	f.Fuzz(func(t *testing.T, user string) {
		out, err := MergeConfig([]byte(user), []string{"gcr.io", "eu.gcr.io"})
		if err != nil {
			return
		}
		if got := ServedRegistries(out); len(got) != 2 || got[0] != "eu.gcr.io" || got[1] != "gcr.io" {
			t.Fatalf("served %q from %s", got, out)
		}
		// Every setting of the user's survives.
		var in, merged map[string]json.RawMessage
		json.Unmarshal([]byte(user), &in)
		if err := json.Unmarshal(out, &merged); err != nil {
			t.Fatal(err)
		}
		for k := range in {
			if _, ok := merged[k]; !ok {
				t.Fatalf("setting %q lost", k)
			}
		}
	})
}

func TestPrepare(t *testing.T) {
	user := t.TempDir()
	userConfig := `{"auths":{"ghcr.io":{"auth":"dTpw"}},"credHelpers":{"ecr.example":"ecr-login"}}`
	if err := os.WriteFile(filepath.Join(user, "config.json"), []byte(userConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(user, "contexts", "meta"), 0o755); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, user)

	dir := t.TempDir()
	info, err := Setup{Dir: dir, UserDir: user, Registries: []string{"gcr.io"}, Executable: "/usr/bin/true"}.Prepare()
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]os.FileMode{
		info.ConfigDir: os.ModeDir | 0o700,
		info.BinDir:    os.ModeDir | 0o700,
		filepath.Join(info.ConfigDir, "config.json"): 0o600,
	} {
		if st, err := os.Stat(path); err != nil || st.Mode() != want {
			t.Errorf("%s: %v %v, want %v", filepath.Base(path), st.Mode(), err, want)
		}
	}
	data, _ := os.ReadFile(filepath.Join(info.ConfigDir, "config.json"))
	var got struct {
		Auths       map[string]any    `json:"auths"`
		CredHelpers map[string]string `json:"credHelpers"`
	}
	if err := json.Unmarshal(data, &got); err != nil || got.Auths["ghcr.io"] == nil ||
		got.CredHelpers["ecr.example"] != "ecr-login" || got.CredHelpers["gcr.io"] != "credbroker" {
		t.Errorf("config.json = %s", data)
	}
	if target, err := os.Readlink(filepath.Join(info.ConfigDir, "contexts")); err != nil || target != filepath.Join(user, "contexts") {
		t.Errorf("contexts link: %q %v", target, err)
	}
	if _, err := os.Lstat(filepath.Join(info.ConfigDir, "cli-plugins")); !os.IsNotExist(err) {
		t.Errorf("cli-plugins link made for a missing directory: %v", err)
	}
	if target, err := os.Readlink(filepath.Join(info.BinDir, BinaryName)); err != nil || target != "/usr/bin/true" {
		t.Errorf("helper link: %q %v", target, err)
	}
	if after := snapshot(t, user); after != before {
		t.Errorf("the user's docker directory changed:\n%s\n%s", before, after)
	}

	// A second Prepare in the same directory refuses to overwrite.
	if _, err := (Setup{Dir: dir, Executable: "/usr/bin/true"}).Prepare(); err == nil {
		t.Error("Prepare overwrote an existing config.json")
	}
}

// snapshot lists a directory tree with modes, sizes and times.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	var s string
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil {
			s += p + " " + fi.Mode().String() + " " + fi.ModTime().String() + "\n"
		}
		return nil
	})
	return s
}

func TestUserConfigDir(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	if d := UserConfigDir(env(map[string]string{"DOCKER_CONFIG": "/d", "HOME": "/h"})); d != "/d" {
		t.Error(d)
	}
	if d := UserConfigDir(env(map[string]string{"HOME": "/h"})); d != "/h/.docker" {
		t.Error(d)
	}
	if d := UserConfigDir(env(nil)); d != "" {
		t.Error(d)
	}
}

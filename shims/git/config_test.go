package git

import (
	"fmt"
	"testing"
)

func TestEntries(t *testing.T) {
	c := Config{Executable: "/opt/cred broker/it's", Hosts: []string{"*.googlesource.com"}, GerritHosts: []string{"g.example.com"}}
	got := fmt.Sprintf("%q", c.Entries())
	want := fmt.Sprintf("%q", []Entry{
		{"credential.https://*.googlesource.com.helper", ""},
		{"credential.https://*.googlesource.com.helper", `!'/opt/cred broker/it'\''s' git-credential --host '*.googlesource.com'`},
		{"url.https://g.example.com/a/.insteadOf", "https://g.example.com/a/"},
		{"url.https://g.example.com/a/.insteadOf", "https://g.example.com/"},
	})
	if got != want {
		t.Errorf("entries\n%s\nwant\n%s", got, want)
	}
	if n := len(Config{Executable: "x"}.Entries()); n != 2*len(DefaultHosts) {
		t.Errorf("default entries: %d", n)
	}
}

func TestAppendEnv(t *testing.T) {
	tests := []struct {
		name    string
		env     envMap
		want    envMap
		wantErr bool
	}{
		{"fresh", envMap{}, envMap{"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "a.b", "GIT_CONFIG_VALUE_0": "v", "GIT_TERMINAL_PROMPT": "0"}, false},
		{"after the caller's", envMap{"GIT_CONFIG_COUNT": "2", "GIT_CONFIG_KEY_0": "x.y", "GIT_CONFIG_VALUE_0": "1", "GIT_CONFIG_KEY_1": "x.z", "GIT_CONFIG_VALUE_1": "2"},
			envMap{"GIT_CONFIG_COUNT": "3", "GIT_CONFIG_KEY_0": "x.y", "GIT_CONFIG_VALUE_0": "1", "GIT_CONFIG_KEY_1": "x.z", "GIT_CONFIG_VALUE_1": "2",
				"GIT_CONFIG_KEY_2": "a.b", "GIT_CONFIG_VALUE_2": "v", "GIT_TERMINAL_PROMPT": "0"}, false},
		{"empty count", envMap{"GIT_CONFIG_COUNT": ""}, envMap{"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "a.b", "GIT_CONFIG_VALUE_0": "v", "GIT_TERMINAL_PROMPT": "0"}, false},
		{"bogus count", envMap{"GIT_CONFIG_COUNT": "x"}, nil, true},
		{"negative count", envMap{"GIT_CONFIG_COUNT": "-1"}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := AppendEnv(tt.env, []Entry{{"a.b", "v"}})
			if (err != nil) != tt.wantErr {
				t.Fatalf("err %v", err)
			}
			if err == nil && fmt.Sprint(tt.env) != fmt.Sprint(tt.want) {
				t.Errorf("env %v\nwant %v", tt.env, tt.want)
			}
		})
	}
}

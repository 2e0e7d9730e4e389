package lucictx

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ctx.json")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func mustParse(t *testing.T, content string) *Context {
	t.Helper()
	c, warns, err := Parse([]byte(content))
	if err != nil {
		t.Fatalf("Parse(%q): %v", content, err)
	}
	if len(warns) > 0 {
		t.Fatalf("Parse(%q) warnings: %q", content, warns)
	}
	return c
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name      string
		content   string
		wantErr   string // substring; "" means success
		wantNames []string
		wantWarns []string
	}{
		{name: "empty object", content: "{}", wantNames: nil},
		{name: "sections", content: `{"realm":{"name":"p:r"},"x":{}}`, wantNames: []string{"realm", "x"}},
		{
			name:      "non-object section dropped",
			content:   `{"not":"a map","ok":{"a":1},"list":[1],"nul":null}`,
			wantNames: []string{"ok"},
			wantWarns: []string{`section "list" is not`, `section "not" is not`, `section "nul" is not`},
		},
		{name: "string top level", content: `"hello"`, wantErr: "cannot unmarshal string"},
		{name: "array top level", content: `[]`, wantErr: "not a JSON object"},
		{name: "null top level", content: `null`, wantErr: "top level is null"},
		{name: "bad JSON", content: `{"a":`, wantErr: "not valid JSON"},
		{name: "empty file", content: ``, wantErr: "not valid JSON"},
		{name: "trailing garbage", content: `{} x`, wantErr: "not valid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, tt.content)
			c, warns, err := Load(path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), path) {
					t.Fatalf("Load error = %v, want one containing %q and the path", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Names(); !slices.Equal(got, tt.wantNames) {
				t.Errorf("Names = %q, want %q", got, tt.wantNames)
			}
			if len(warns) != len(tt.wantWarns) {
				t.Fatalf("warnings = %q, want %d", warns, len(tt.wantWarns))
			}
			for i, w := range warns {
				if !strings.Contains(w, tt.wantWarns[i]) || !strings.Contains(w, path) {
					t.Errorf("warning %d = %q, want it to contain %q and the path", i, w, tt.wantWarns[i])
				}
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "absent")
	_, _, err := Load(path)
	if err == nil || !strings.Contains(err.Error(), "cannot open LUCI_CONTEXT file") || !strings.Contains(err.Error(), path) {
		t.Fatalf("Load = %v", err)
	}
}

func TestRawKeptAndEncode(t *testing.T) {
	in := "{\n  \"zeta\": {\"b\": 1, \"a\": 1.50, \"h\": \"<&>\"},\n  \"alpha\": { \"k\" : [ 1, 2 ] }\n}"
	c := mustParse(t, in)
	raw, ok := c.Raw("zeta")
	if !ok || string(raw) != `{"b": 1, "a": 1.50, "h": "<&>"}` {
		t.Fatalf("Raw(zeta) = %q, %v", raw, ok)
	}
	// Key order, number digits and characters are kept; only whitespace goes.
	want := `{"alpha":{"k":[1,2]},"zeta":{"b":1,"a":1.50,"h":"<&>"}}` + "\n"
	if got := string(c.Encode()); got != want {
		t.Fatalf("Encode =\n%q\nwant\n%q", got, want)
	}
}

func TestSetDelete(t *testing.T) {
	base := mustParse(t, `{"a":{"x":1},"b":{"y":2}}`)

	c, err := base.SetRaw("c", []byte(`{"z":3}`))
	if err != nil {
		t.Fatal(err)
	}
	c, err = c.Set("a", map[string]int{"x": 9})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(c.Encode()), `{"a":{"x":9},"b":{"y":2},"c":{"z":3}}`+"\n"; got != want {
		t.Errorf("after set: %q, want %q", got, want)
	}
	if got, want := string(base.Encode()), `{"a":{"x":1},"b":{"y":2}}`+"\n"; got != want {
		t.Errorf("base changed: %q", got)
	}

	d, err := c.Set("b", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Names(); !slices.Equal(got, []string{"a", "c"}) {
		t.Errorf("after delete: %q", got)
	}
	if d.Delete("absent") != d {
		t.Error("deleting an absent section did not return the same context")
	}

	for _, bad := range []string{`[1]`, `"s"`, `null`, `{`, ``} {
		if _, err := base.SetRaw("x", []byte(bad)); err == nil {
			t.Errorf("SetRaw(%q) succeeded", bad)
		}
	}
	if _, err := base.Set("x", []int{1}); err == nil {
		t.Error("Set with a non-object value succeeded")
	}

	var v struct{ X int }
	if ok, err := c.Get("a", &v); !ok || err != nil || v.X != 9 {
		t.Errorf("Get(a) = %v, %v, %+v", ok, err, v)
	}
	if ok, err := c.Get("absent", &v); ok || err != nil {
		t.Errorf("Get(absent) = %v, %v", ok, err)
	}
}

func TestNilContext(t *testing.T) {
	var c *Context
	if !c.Empty() || c.Names() != nil {
		t.Fatal("nil context is not empty")
	}
	if got := string(c.Encode()); got != "{}\n" {
		t.Fatalf("Encode = %q", got)
	}
	la, err := c.LocalAuth()
	if la != nil || err != nil {
		t.Fatalf("LocalAuth = %v, %v", la, err)
	}
	d, err := c.Set("a", map[string]int{})
	if err != nil || d.Empty() {
		t.Fatalf("Set on nil: %v", err)
	}
}

func TestExport(t *testing.T) {
	dir := t.TempDir()
	c := mustParse(t, `{"realm":{"name":"proj:realm"}}`)
	c = c.SetLocalAuth(&LocalAuth{RPCPort: 35473, Secret: []byte("foo"), Accounts: []LocalAuthAccount{{"a", "a@example.com"}}, DefaultAccountID: "a"})

	p1, err := c.Export(dir)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := c.Export(dir)
	if err != nil {
		t.Fatal(err)
	}
	if p1 == p2 {
		t.Fatal("two exports share a file")
	}
	for _, p := range []string{p1, p2} {
		if filepath.Dir(p) != dir || !strings.HasPrefix(filepath.Base(p), "luci_context.") {
			t.Errorf("exported to %s", p)
		}
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", p, st.Mode().Perm())
		}
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		want := `{"local_auth":{"rpc_port":35473,"secret":"Zm9v","accounts":[{"id":"a","email":"a@example.com"}],"default_account_id":"a"},"realm":{"name":"proj:realm"}}` + "\n"
		if string(data) != want {
			t.Errorf("file =\n%q\nwant\n%q", data, want)
		}
		back, warns, err := Load(p)
		if err != nil || len(warns) > 0 {
			t.Fatalf("Load back: %v %q", err, warns)
		}
		if string(back.Encode()) != want {
			t.Errorf("round trip changed the file")
		}
	}

	if _, err := c.Export(filepath.Join(dir, "missing")); err == nil {
		t.Error("export into a missing directory succeeded")
	}
}

func TestEnv(t *testing.T) {
	tests := []struct {
		name    string
		env     []string
		wantSet []string
		wantRm  []string
	}{
		{
			name:    "append",
			env:     []string{"A=1", "B=2"},
			wantSet: []string{"A=1", "B=2", "LUCI_CONTEXT=/p"},
			wantRm:  []string{"A=1", "B=2"},
		},
		{
			name:    "replace in place",
			env:     []string{"A=1", "LUCI_CONTEXT=/old", "B=2"},
			wantSet: []string{"A=1", "LUCI_CONTEXT=/p", "B=2"},
			wantRm:  []string{"A=1", "B=2"},
		},
		{
			name:    "case-insensitive key and duplicates",
			env:     []string{"luci_context=/old", "A=1", "Luci_Context=/older"},
			wantSet: []string{"LUCI_CONTEXT=/p", "A=1"},
			wantRm:  []string{"A=1"},
		},
		{
			name:    "prefix is not the key",
			env:     []string{"LUCI_CONTEXTX=1", "LUCI_CONTEXT", "X=LUCI_CONTEXT=1"},
			wantSet: []string{"LUCI_CONTEXTX=1", "LUCI_CONTEXT", "X=LUCI_CONTEXT=1", "LUCI_CONTEXT=/p"},
			wantRm:  []string{"LUCI_CONTEXTX=1", "LUCI_CONTEXT", "X=LUCI_CONTEXT=1"},
		},
		{name: "empty", env: nil, wantSet: []string{"LUCI_CONTEXT=/p"}, wantRm: []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orig := slices.Clone(tt.env)
			if got := SetInEnv(tt.env, "/p"); !slices.Equal(got, tt.wantSet) {
				t.Errorf("SetInEnv = %q, want %q", got, tt.wantSet)
			}
			if got := RemoveFromEnv(tt.env); !slices.Equal(got, tt.wantRm) {
				t.Errorf("RemoveFromEnv = %q, want %q", got, tt.wantRm)
			}
			if !slices.Equal(tt.env, orig) {
				t.Errorf("input modified: %q", tt.env)
			}
		})
	}
	if v, ok := LookupEnv([]string{"luci_context=/x", "LUCI_CONTEXT=/y"}); !ok || v != "/y" {
		t.Errorf("LookupEnv = %q, %v", v, ok)
	}
	if _, ok := LookupEnv([]string{"A=1"}); ok {
		t.Error("LookupEnv found a missing key")
	}
}

func TestErrorsDoNotPanicOnBadLocalAuth(t *testing.T) {
	c := mustParse(t, `{"local_auth":{"secret":"***"}}`)
	if _, err := c.LocalAuth(); err == nil || strings.Contains(err.Error(), "***") {
		t.Fatalf("LocalAuth err = %v", err)
	}
	if _, err := c.SwitchLocalAccount("x"); err == nil || errors.Is(err, ErrNoLocalAuthAccount) {
		t.Fatalf("SwitchLocalAccount err = %v", err)
	}
}

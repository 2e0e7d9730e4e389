package lucictx

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestLocalAuthMarshal(t *testing.T) {
	tests := []struct {
		name string
		la   LocalAuth
		want string
	}{
		{
			name: "full",
			la: LocalAuth{
				RPCPort:          35473,
				Secret:           []byte("foo"),
				Accounts:         []LocalAuthAccount{{"luci-auth", "sa-x@example.com"}, {"system", "sa-x@example.com"}},
				DefaultAccountID: "luci-auth",
			},
			want: `{"rpc_port":35473,"secret":"Zm9v","accounts":[{"id":"luci-auth","email":"sa-x@example.com"},{"id":"system","email":"sa-x@example.com"}],"default_account_id":"luci-auth"}`,
		},
		{
			name: "no default account",
			la:   LocalAuth{RPCPort: 1, Secret: []byte{0xfb, 0xff}, Accounts: []LocalAuthAccount{{"a", "-"}}},
			want: `{"rpc_port":1,"secret":"+/8=","accounts":[{"id":"a","email":"-"}]}`,
		},
		{
			name: "empty",
			want: `{"rpc_port":0,"secret":""}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := json.Marshal(tt.la)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Fatalf("Marshal =\n%s\nwant\n%s", got, tt.want)
			}
			var back LocalAuth
			if err := json.Unmarshal(got, &back); err != nil {
				t.Fatal(err)
			}
			if !equalLocalAuth(back, tt.la) {
				t.Errorf("round trip = %+v, want %+v", back, tt.la)
			}
		})
	}
}

func equalLocalAuth(a, b LocalAuth) bool {
	return a.RPCPort == b.RPCPort && bytes.Equal(a.Secret, b.Secret) && a.DefaultAccountID == b.DefaultAccountID &&
		len(a.Accounts) == len(b.Accounts) && (len(a.Accounts) == 0 || reflect.DeepEqual(a.Accounts, b.Accounts))
}

func TestLocalAuthUnmarshal(t *testing.T) {
	secret := []byte{0xfb, 0xff, 0xbf} // standard "+/+/", URL-safe "-_-_"
	tests := []struct {
		name    string
		in      string
		want    LocalAuth
		wantErr string
	}{
		{name: "number port", in: `{"rpc_port":7,"secret":"Zm9v"}`, want: LocalAuth{RPCPort: 7, Secret: []byte("foo")}},
		{name: "quoted port", in: `{"rpc_port":"7"}`, want: LocalAuth{RPCPort: 7}},
		{name: "camel names", in: `{"rpcPort":8,"defaultAccountId":"a"}`, want: LocalAuth{RPCPort: 8, DefaultAccountID: "a"}},
		{name: "padded std", in: `{"secret":"+/+/"}`, want: LocalAuth{Secret: secret}},
		{name: "url-safe", in: `{"secret":"-_-_"}`, want: LocalAuth{Secret: secret}},
		{name: "unpadded", in: `{"secret":"Zm9vYg"}`, want: LocalAuth{Secret: []byte("foob")}},
		{name: "padded", in: `{"secret":"Zm9vYg=="}`, want: LocalAuth{Secret: []byte("foob")}},
		{name: "unpadded url-safe", in: `{"secret":"-_8"}`, want: LocalAuth{Secret: []byte{0xfb, 0xff}}},
		{
			name: "unknown fields ignored",
			in:   `{"rpc_port":1,"future":{"x":[1]},"accounts":[{"id":"a","email":"e","extra":1}]}`,
			want: LocalAuth{RPCPort: 1, Accounts: []LocalAuthAccount{{"a", "e"}}},
		},
		{name: "nulls", in: `{"rpc_port":null,"secret":null,"accounts":null}`},
		{name: "bad secret", in: `{"secret":"@@@@"}`, wantErr: "secret"},
		{name: "secret not a string", in: `{"secret":5}`, wantErr: "secret: not a string"},
		{name: "negative port", in: `{"rpc_port":-1}`, wantErr: "rpc_port"},
		{name: "huge port", in: `{"rpc_port":4294967296}`, wantErr: "rpc_port"},
		{name: "fractional port", in: `{"rpc_port":1.5}`, wantErr: "rpc_port"},
		{name: "bool port", in: `{"rpc_port":true}`, wantErr: "rpc_port"},
		{name: "accounts not a list", in: `{"accounts":{}}`, wantErr: "accounts"},
		{name: "array", in: `[]`, wantErr: "local_auth"},
		{name: "null section", in: `null`, wantErr: "not a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got LocalAuth
			err := json.Unmarshal([]byte(tt.in), &got)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "@@@@") {
					t.Fatalf("error repeats the secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !equalLocalAuth(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestLocalAuthSection(t *testing.T) {
	c := mustParse(t, `{"local_auth":{"rpc_port":"99","secret":"Zm9v","accounts":[{"id":"a","email":"a@x"},{"id":"b","email":"-"}],"default_account_id":"a"},"realm":{"name":"r"}}`)
	la, err := c.LocalAuth()
	if err != nil {
		t.Fatal(err)
	}
	want := LocalAuth{RPCPort: 99, Secret: []byte("foo"), Accounts: []LocalAuthAccount{{"a", "a@x"}, {"b", "-"}}, DefaultAccountID: "a"}
	if !equalLocalAuth(*la, want) {
		t.Fatalf("LocalAuth = %+v", la)
	}
	if a, ok := la.Account("b"); !ok || a.Email != NoEmail {
		t.Errorf("Account(b) = %+v, %v", a, ok)
	}
	if _, ok := la.Account("z"); ok {
		t.Error("Account(z) found")
	}
	// Writing back always uses a numeric port and padded standard base64.
	got := string(c.SetLocalAuth(la).Encode())
	wantFile := `{"local_auth":{"rpc_port":99,"secret":"Zm9v","accounts":[{"id":"a","email":"a@x"},{"id":"b","email":"-"}],"default_account_id":"a"},"realm":{"name":"r"}}` + "\n"
	if got != wantFile {
		t.Errorf("Encode =\n%s\nwant\n%s", got, wantFile)
	}
	if c.SetLocalAuth(nil).Names()[0] != "realm" || len(c.SetLocalAuth(nil).Names()) != 1 {
		t.Error("SetLocalAuth(nil) did not delete the section")
	}
}

func TestSwitchLocalAccount(t *testing.T) {
	withAuth := mustParse(t, `{"local_auth":{"rpc_port":1,"secret":"Zm9v","accounts":[{"id":"a","email":"a@x"},{"id":"b","email":"b@x"}],"default_account_id":"a"},"realm":{"name":"r"}}`)

	t.Run("no local_auth", func(t *testing.T) {
		_, err := mustParse(t, `{"realm":{}}`).SwitchLocalAccount("a")
		if !errors.Is(err, ErrNoLocalAuthAccount) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("no-op", func(t *testing.T) {
		c, err := withAuth.SwitchLocalAccount("a")
		if err != nil || c != withAuth {
			t.Fatalf("got %p, %v; want the same context", c, err)
		}
	})
	t.Run("switch", func(t *testing.T) {
		c, err := withAuth.SwitchLocalAccount("b")
		if err != nil {
			t.Fatal(err)
		}
		la, _ := c.LocalAuth()
		if la.DefaultAccountID != "b" {
			t.Fatalf("default = %q", la.DefaultAccountID)
		}
		orig, _ := withAuth.LocalAuth()
		if orig.DefaultAccountID != "a" {
			t.Fatal("switch changed the parent")
		}
		if raw, _ := c.Raw("realm"); string(raw) != `{"name":"r"}` {
			t.Errorf("realm = %s", raw)
		}
	})
	t.Run("missing account", func(t *testing.T) {
		if _, err := withAuth.SwitchLocalAccount("z"); !errors.Is(err, ErrNoLocalAuthAccount) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("cleared local_auth", func(t *testing.T) {
		if _, err := withAuth.SetLocalAuth(nil).SwitchLocalAccount("b"); !errors.Is(err, ErrNoLocalAuthAccount) {
			t.Fatalf("err = %v", err)
		}
	})
}

// FuzzParse checks that no input makes the reader panic, that whatever it
// accepts is written back in a form it reads to the same thing, and that
// the local_auth section either fails cleanly or survives a round trip.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{}`, `null`, `[]`, `"x"`, `{"a":1}`, `{"a":{"b":[1,2,{"c":null}]}}`,
		`{"local_auth":{"rpc_port":35473,"secret":"Zm9v","accounts":[{"id":"a","email":"a@x"}],"default_account_id":"a"}}`,
		`{"local_auth":{"rpc_port":"7","secret":"-_8"}}`,
		`{"local_auth":{"rpcPort":1e3,"secret":"Zm9v="}}`,
		`{"local_auth":[]}`, `{"x":{"<&>":"\u2028"}, "x":{}}`, "{\"a\" : { } }\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, _, err := Parse(data)
		if err != nil {
			return
		}
		out := c.Encode()
		back, warns, err := Parse(out)
		if err != nil || len(warns) > 0 {
			t.Fatalf("re-reading %q: %v %q", out, err, warns)
		}
		if again := back.Encode(); !bytes.Equal(again, out) {
			t.Fatalf("encoding is not stable:\n%q\n%q", out, again)
		}
		la, err := c.LocalAuth()
		if err != nil || la == nil {
			return
		}
		round, err := c.SetLocalAuth(la).LocalAuth()
		if err != nil {
			t.Fatalf("re-reading local_auth: %v", err)
		}
		if !equalLocalAuth(*round, *la) {
			t.Fatalf("local_auth round trip: %+v != %+v", round, la)
		}
	})
}

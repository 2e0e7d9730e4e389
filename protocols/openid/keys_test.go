package openid

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
)

func TestParseKeyring(t *testing.T) {
	k1, k2 := GenerateKey("k1"), GenerateKey("k2")
	good := "# keys\n\n" + FormatKey(k2) + "  " + FormatKey(k1)
	kr, err := ParseKeyring([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if kr.primary != "k2" || len(kr.aeads) != 2 {
		t.Errorf("primary %q, %d keys", kr.primary, len(kr.aeads))
	}
	short := base64.StdEncoding.EncodeToString(make([]byte, 16))
	tests := []struct {
		name, file, want string
	}{
		{"empty", "# nothing\n", "at least one key"},
		{"one field", "k1\n", `want "ID BASE64"`},
		{"bad base64", "k1 !!!\n", "not standard base64"},
		{"short key", "k1 " + short + "\n", "has 16 bytes, want 32"},
		{"bad id", "k.1 " + base64.StdEncoding.EncodeToString(k1.Secret) + "\n", "key id"},
		{"duplicate", FormatKey(k1) + FormatKey(k1), "given twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseKeyring([]byte(tt.file))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), base64.StdEncoding.EncodeToString(k1.Secret)) {
				t.Error("the error shows the key")
			}
		})
	}
}

func TestSealOpen(t *testing.T) {
	k1, k2 := GenerateKey("k1"), GenerateKey("k2")
	old, _ := NewKeyring(k1)
	rotated, _ := NewKeyring(k2, k1)
	dropped, _ := NewKeyring(k2)
	sealed := old.seal([]byte("hello"), []byte("ad"))
	tests := []struct {
		name   string
		kr     *Keyring
		sealed string
		ad     string
		ok     bool
	}{
		{"same key", old, sealed, "ad", true},
		{"rotated keeps old", rotated, sealed, "ad", true},
		{"dropped key", dropped, sealed, "ad", false},
		{"other associated data", old, sealed, "other", false},
		{"relabelled key id", old, "k2" + strings.TrimPrefix(sealed, "k1"), "ad", false},
		{"no separator", old, "k1", "ad", false},
		{"empty", old, "", "ad", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pt, err := tt.kr.open(tt.sealed, []byte(tt.ad))
			if (err == nil) != tt.ok || (tt.ok && !bytes.Equal(pt, []byte("hello"))) {
				t.Errorf("open = %q, %v; want ok=%v", pt, err, tt.ok)
			}
		})
	}
	if a, b := old.seal([]byte("x"), nil), old.seal([]byte("x"), nil); a == b {
		t.Error("two seals of one plaintext are equal: the nonce is not random")
	}
}

func FuzzOpen(f *testing.F) {
	kr, _ := NewKeyring(GenerateKey("k1"))
	f.Add(kr.seal([]byte("hello"), adSession))
	f.Add("k1.")
	f.Add("k1.AAAA")
	f.Add(".")
	f.Fuzz(func(t *testing.T, s string) {
		// Nothing but a value this keyring sealed may open, and nothing
		// may panic.
		if pt, err := kr.open(s, adSession); err == nil && !bytes.Equal(pt, []byte("hello")) {
			t.Fatalf("forged value opened: %q", pt)
		}
	})
}

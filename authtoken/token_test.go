package authtoken

import (
	"strings"
	"testing"
)

func TestNewIDsAndValues(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		id, err := NewPublicID()
		if err != nil || !ValidPublicID(id) || len(id) != 13 {
			t.Fatalf("NewPublicID = %q, %v", id, err)
		}
		v, err := NewValue()
		if err != nil || !ValidValue(v) || !strings.HasPrefix(v, VersionPrefix) || len(v) != 44 {
			t.Fatalf("NewValue = len %d, %v", len(v), err)
		}
		if seen[id] || seen[v] {
			t.Fatal("repeated id or value")
		}
		seen[id], seen[v] = true, true
		gotID, gotV, err := ParseCredential(Credential(id, v))
		if err != nil || gotID != id || gotV != v {
			t.Fatalf("ParseCredential round trip failed: %v", err)
		}
	}
}

func TestParseCredential(t *testing.T) {
	v := "0" + strings.Repeat("a", 43)
	tests := []struct {
		in string
		ok bool
	}{
		{"at_ABCDEFGHIJ_" + v, true},
		{"at_ABCDEFGHIJ_" + "0" + strings.Repeat("Z", 86), true},
		{"at_ABCDEFGHIJ_" + "0" + strings.Repeat("Z", 87), false},
		{"at_ABCDEFGHIJ_" + v[:43], false},
		{"at_ABCDEFGHIJ_1" + v[1:], false},
		{"at_ABCDEFGHI_" + v, false},
		{"at_ABCDEFGHIJK_" + v, false},
		{"at_ABCDEFGHI-_" + v, false},
		{"xx_ABCDEFGHIJ_" + v, false},
		{"at_ABCDEFGHIJ-" + v, false},
		{"at_ABCDEFGHIJ_" + v + " ", false},
		{" at_ABCDEFGHIJ_" + v, false},
		{"at_ABCDEFGHIJ_" + v[:40] + "+/=a", false},
		{"", false},
		{"at_", false},
	}
	for _, tt := range tests {
		id, val, err := ParseCredential(tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("ParseCredential(%q) err = %v, want ok=%v", tt.in, err, tt.ok)
		}
		if err != nil && (id != "" || val != "") {
			t.Errorf("ParseCredential(%q) returned parts with an error", tt.in)
		}
		if err != nil && strings.Contains(err.Error(), "aaaa") {
			t.Errorf("error echoes the input: %v", err)
		}
	}
}

func FuzzParseCredential(f *testing.F) {
	f.Add("at_ABCDEFGHIJ_0" + strings.Repeat("a", 43))
	f.Add("at_ABCDEFGHIJ_")
	f.Add("at__________________________________________________________")
	f.Add("")
	f.Add("at_ABCDEFGHIJ_0" + strings.Repeat("\xff", 43))
	f.Fuzz(func(t *testing.T, s string) {
		id, v, err := ParseCredential(s)
		if err != nil {
			if id != "" || v != "" {
				t.Fatal("parts returned with an error")
			}
			if err != ErrMalformed {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if !ValidPublicID(id) || !ValidValue(v) {
			t.Fatalf("accepted invalid parts %q %q", id, v)
		}
		if Credential(id, v) != s {
			t.Fatalf("round trip changed %q", s)
		}
	})
}

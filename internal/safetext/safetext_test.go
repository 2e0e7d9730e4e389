package safetext

import "testing"

func TestLine(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"Invalid JWT Signature.", 100, "Invalid JWT Signature."},
		{"two\nlines\r\n", 100, "two lines"},
		{"\x1b[31mred\x00", 100, "[31mred"},
		{"héllo wörld", 5, "héllo..."},
		{"  padded  ", 100, "padded"},
	}
	for _, tt := range tests {
		if got := Line(tt.in, tt.n); got != tt.want {
			t.Errorf("Line(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}

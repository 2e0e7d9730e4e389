package safetext

import (
	"strings"
	"unicode"
)

// Line returns s with every unprintable character (newlines included)
// replaced by a space, cut to at most n characters (then ending in
// "..."), and trimmed.
func Line(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return ' '
	}, s)
	if r := []rune(s); len(r) > n {
		s = string(r[:n]) + "..."
	}
	return strings.TrimSpace(s)
}

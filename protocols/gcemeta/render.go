package gcemeta

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"
)

// Content types, literally as GCE sends them: no charset. oauth2client
// compares the JSON one for equality, so a charset would break it.
const (
	contentText = "application/text"
	contentJSON = "application/json"
)

// etagOf is GCE's ETag: the first 8 bytes of the body's SHA-256, in hex.
func etagOf(body []byte) string {
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:8])
}

// toJSON encodes v compactly, without HTML escaping and without the
// encoder's trailing newline. Values here are strings, json.Number,
// []string and maps of those, which always encode.
func toJSON(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic("gcemeta: value does not encode: " + err.Error())
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// textLines renders a value as GCE's text lines: a scalar is one line
// (strings unquoted), a list one line per element, a map "key value"
// lines with keys sorted; anything nested is inline JSON.
func textLines(v any) []string {
	switch v := v.(type) {
	case []string:
		return slices.Clone(v)
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		lines := make([]string, 0, len(keys))
		for _, k := range keys {
			lines = append(lines, k+" "+scalarText(v[k]))
		}
		return lines
	default:
		return []string{scalarText(v)}
	}
}

func scalarText(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	default:
		return string(toJSON(v))
	}
}

// joinLines follows GCE: one line has no trailing newline, any other
// count (none included) ends with one.
func joinLines(lines []string) string {
	if len(lines) == 1 {
		return lines[0]
	}
	return strings.Join(lines, "\n") + "\n"
}

// renderLeaf picks a leaf's format: maps (the token) default to JSON,
// everything else to text; alt switches.
func renderLeaf(v any, alt string) (body []byte, contentType string) {
	_, isMap := v.(map[string]any)
	asJSON := alt == "json" || (isMap && alt != "text")
	if asJSON {
		return toJSON(v), contentJSON
	}
	return []byte(joinLines(textLines(v))), contentText
}

// renderListing is a plain directory listing: sorted child names, one per
// line, directories with a trailing "/", always ending with a newline
// (empty for an empty directory).
func renderListing(n *node) []byte {
	var b strings.Builder
	for _, name := range n.sortedChildren() {
		b.WriteString(name)
		if n.children[name].isDir() {
			b.WriteByte('/')
		}
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

// recursiveValue is a directory as one JSON object: expensive leaves are
// left out, and keys are camelCased at "-" (numeric-project-id becomes
// numericProjectId) except in directories whose keys are names chosen
// elsewhere (account emails, attribute names), which GCE keeps verbatim.
func recursiveValue(n *node) map[string]any {
	out := make(map[string]any, len(n.children))
	for name, c := range n.children {
		key := name
		if !n.verbatim {
			key = camelCase(name)
		}
		switch {
		case c.isDir():
			out[key] = recursiveValue(c)
		case c.mint == nil:
			out[key] = c.value
		}
	}
	return out
}

// recursiveText is a directory as "<relative path> <value>" lines, one
// per list element, in sorted order, expensive leaves left out.
func recursiveText(n *node, prefix string, lines []string) []string {
	for _, name := range n.sortedChildren() {
		c := n.children[name]
		switch {
		case c.isDir():
			lines = recursiveText(c, prefix+name+"/", lines)
		case c.mint == nil:
			for _, l := range textLines(c.value) {
				lines = append(lines, prefix+name+" "+l)
			}
		}
	}
	return lines
}

func renderRecursive(n *node, alt string) (body []byte, contentType string) {
	if alt == "text" {
		lines := recursiveText(n, "", nil)
		if len(lines) == 0 {
			return nil, contentText
		}
		return []byte(strings.Join(lines, "\n") + "\n"), contentText
	}
	return toJSON(recursiveValue(n)), contentJSON
}

// camelCase turns "numeric-project-id" into "numericProjectId".
func camelCase(s string) string {
	if !strings.Contains(s, "-") {
		return s
	}
	parts := strings.Split(s, "-")
	var b strings.Builder
	b.WriteString(parts[0])
	for _, p := range parts[1:] {
		if p == "" {
			continue
		}
		b.WriteString(strings.ToUpper(p[:1]) + p[1:])
	}
	return b.String()
}

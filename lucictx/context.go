package lucictx

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
)

// EnvKey is the environment variable that holds the path of the file.
const EnvKey = "LUCI_CONTEXT"

// maxFileSize bounds what Load reads. Real files are a few hundred bytes;
// the cap only keeps a wrong path (a device, a huge log) from eating memory.
const maxFileSize = 16 << 20

// Context is a parsed LUCI_CONTEXT: section name to the section's JSON
// object, byte for byte as read or set. The zero value and nil are empty
// contexts. Methods never modify the receiver.
type Context struct {
	sections map[string]json.RawMessage
}

// Load reads and parses the file at path. Warnings describe sections that
// were dropped; the caller decides whether and how to report them. Errors
// name the file.
func Load(path string) (*Context, []string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("lucictx: cannot open LUCI_CONTEXT file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, nil, fmt.Errorf("lucictx: cannot read LUCI_CONTEXT file %s: %w", path, err)
	}
	if len(data) > maxFileSize {
		return nil, nil, fmt.Errorf("lucictx: LUCI_CONTEXT file %s is larger than %d bytes", path, maxFileSize)
	}
	c, warns, err := Parse(data)
	if err != nil {
		return nil, nil, fmt.Errorf("lucictx: LUCI_CONTEXT file %s: %w", path, err)
	}
	for i, w := range warns {
		warns[i] = fmt.Sprintf("LUCI_CONTEXT file %s: %s", path, w)
	}
	return c, warns, nil
}

// Parse parses the contents of a LUCI_CONTEXT file. The top level must be
// a JSON object (a JSON null is refused too: it is no context at all, and
// almost certainly a writer's bug). Sections that are not objects are
// dropped and reported in the warnings. If a name repeats, the last one
// wins, as with any Go JSON reader.
func Parse(data []byte) (*Context, []string, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		var syntax *json.SyntaxError
		if errors.As(err, &syntax) {
			return nil, nil, fmt.Errorf("not valid JSON: %w", err)
		}
		return nil, nil, fmt.Errorf("top level is not a JSON object: %w", err)
	}
	if top == nil {
		return nil, nil, errors.New("top level is null, want a JSON object")
	}
	var warns []string
	for _, name := range slices.Sorted(maps.Keys(top)) {
		if !isObject(top[name]) {
			warns = append(warns, fmt.Sprintf("section %q is not a JSON object; dropped", name))
			delete(top, name)
		}
	}
	return &Context{sections: top}, warns, nil
}

// isObject reports whether raw, already known to be valid JSON, is an
// object.
func isObject(raw []byte) bool {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	return len(raw) > 0 && raw[0] == '{'
}

// Empty reports whether the context has no sections.
func (c *Context) Empty() bool { return c == nil || len(c.sections) == 0 }

// Names lists the sections, sorted.
func (c *Context) Names() []string {
	if c == nil {
		return nil
	}
	return slices.Sorted(maps.Keys(c.sections))
}

// Raw returns a copy of a section's JSON, or false when it is absent.
func (c *Context) Raw(name string) (json.RawMessage, bool) {
	if c == nil {
		return nil, false
	}
	raw, ok := c.sections[name]
	return bytes.Clone(raw), ok
}

// Get decodes a section into v with encoding/json and reports whether the
// section was there. An absent section leaves v alone.
func (c *Context) Get(name string, v any) (bool, error) {
	raw, ok := c.Raw(name)
	if !ok {
		return false, nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return true, fmt.Errorf("lucictx: section %q: %w", name, err)
	}
	return true, nil
}

// SetRaw returns a context with section name set to raw, which must be a
// JSON object. The bytes are kept as given.
func (c *Context) SetRaw(name string, raw []byte) (*Context, error) {
	if !json.Valid(raw) || !isObject(raw) {
		return nil, fmt.Errorf("lucictx: section %q: not a JSON object", name)
	}
	out := c.clone()
	out.sections[name] = bytes.Clone(raw)
	return out, nil
}

// Set returns a context with section name set to v encoded as JSON, which
// must come out as an object. A nil v deletes the section.
func (c *Context) Set(name string, v any) (*Context, error) {
	if v == nil {
		return c.Delete(name), nil
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("lucictx: section %q: %w", name, err)
	}
	if string(raw) == "null" {
		return c.Delete(name), nil
	}
	return c.SetRaw(name, raw)
}

// Delete returns a context without section name. Deleting an absent
// section returns c itself.
func (c *Context) Delete(name string) *Context {
	if c == nil {
		return &Context{}
	}
	if _, ok := c.sections[name]; !ok {
		return c
	}
	out := c.clone()
	delete(out.sections, name)
	return out
}

func (c *Context) clone() *Context {
	out := &Context{sections: map[string]json.RawMessage{}}
	if c != nil {
		maps.Copy(out.sections, c.sections) // values are never mutated in place
	}
	return out
}

// Encode returns the file contents: one compact JSON object with the
// section names sorted, each section's bytes kept except for insignificant
// whitespace, and a single trailing newline.
func (c *Context) Encode() []byte {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, name := range c.Names() {
		if i > 0 {
			buf.WriteByte(',')
		}
		key, _ := json.Marshal(name) // a string always marshals
		buf.Write(key)
		buf.WriteByte(':')
		if err := json.Compact(&buf, c.sections[name]); err != nil {
			// Sections are validated on the way in; this cannot happen.
			panic(fmt.Sprintf("lucictx: section %q holds invalid JSON: %v", name, err))
		}
	}
	buf.WriteString("}\n")
	return buf.Bytes()
}

// Export writes the context to a new file in dir and returns its path. The
// file is created with O_EXCL and mode 0600 and named luci_context.*; the
// caller removes it when the children that use it are done. An empty
// context still gets a file ("{}"); callers that prefer to drop
// LUCI_CONTEXT from the children's environment instead check Empty.
func (c *Context) Export(dir string) (string, error) {
	if dir == "" {
		dir = os.TempDir()
	}
	f, err := os.CreateTemp(dir, "luci_context.") // O_EXCL, 0600
	if err != nil {
		return "", fmt.Errorf("lucictx: export: %w", err)
	}
	path := f.Name()
	_, werr := f.Write(c.Encode())
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(path)
		return "", fmt.Errorf("lucictx: export to %s: %w", path, err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return path, nil
	}
	return abs, nil
}

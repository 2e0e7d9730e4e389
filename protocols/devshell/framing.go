package devshell

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"unicode/utf8"
)

const (
	// maxHeader is the longest length prefix plus its newline. Clients
	// read 6 bytes looking for the newline, so 5 digits is the protocol's
	// own limit; requests are held to it as well.
	maxHeader = 6
	// MaxRequest caps a request's declared payload length. Real requests
	// are "[]"; the cap keeps a hostile length from costing memory.
	MaxRequest = 64 << 10
	// maxReply is the largest payload a 5-digit length prefix can announce.
	maxReply = 99999
)

// protocolError is a failure reported to the client as a one-element
// array. Its message must never hold a token or a secret.
type protocolError struct{ msg string }

func (e *protocolError) Error() string { return e.msg }

func protoErrorf(format string, args ...any) error {
	return &protocolError{msg: fmt.Sprintf(format, args...)}
}

// readRequest reads one request frame and checks that its payload is a
// JSON array. It reads exactly the declared length with full reads, so
// the frame may arrive in any number of segments; bytes after it are left
// unread.
func readRequest(r *bufio.Reader) error {
	var header []byte
	for {
		b, err := r.ReadByte()
		if err != nil {
			if len(header) == 0 || !errors.Is(err, io.EOF) {
				return protoErrorf("failed to read the header: %s", describeReadError(err))
			}
			return protoErrorf("no newline in the first %d bytes", maxHeader)
		}
		if b == '\n' {
			break
		}
		header = append(header, b)
		if len(header) >= maxHeader {
			return protoErrorf("no newline in the first %d bytes", maxHeader)
		}
	}
	n, err := strconv.Atoi(string(header))
	if err != nil {
		return protoErrorf("length is not a number: %s", err)
	}
	if n < 0 || n > MaxRequest {
		return protoErrorf("length out of range: %d (want 0 to %d)", n, MaxRequest)
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		return protoErrorf("failed to receive request: %s", describeReadError(err))
	}
	if string(payload) == "[]" {
		return nil // what every client sends; the decoder would agree
	}
	var req []any
	if err := json.Unmarshal(payload, &req); err != nil {
		return protoErrorf("failed to deserialize from JSON: %s", err)
	}
	if req == nil { // the payload was JSON null, not an array
		return protoErrorf("failed to deserialize from JSON: want an array, got null")
	}
	return nil
}

// describeReadError names a read failure without the socket addresses
// net errors carry.
func describeReadError(err error) string {
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected EOF"
	case errors.Is(err, io.EOF):
		return "EOF"
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "timed out"
	}
	var ne interface{ Unwrap() error }
	if errors.As(err, &ne) && ne.Unwrap() != nil {
		return ne.Unwrap().Error()
	}
	return err.Error()
}

// reply is a successful answer: [email, project_id, access_token,
// expires_in]. An empty ProjectID is sent as null.
type reply struct {
	Email     string
	ProjectID string
	Token     string
	ExpiresIn int64
}

func (r reply) array() []any {
	var project any
	if r.ProjectID != "" {
		project = r.ProjectID
	}
	return []any{r.Email, project, r.Token, r.ExpiresIn}
}

// encodeReply is encodeFrame(r.array()), written directly when every
// string is plain printable ASCII (the usual case), which both encode
// alike.
func encodeReply(r reply) ([]byte, error) {
	if !plain(r.Email) || !plain(r.ProjectID) || !plain(r.Token) {
		return encodeFrame(r.array())
	}
	body := make([]byte, 0, len(r.Email)+len(r.ProjectID)+len(r.Token)+40)
	body = append(body, `["`...)
	body = append(body, r.Email...)
	body = append(body, `",`...)
	if r.ProjectID == "" {
		body = append(body, "null"...)
	} else {
		body = append(body, '"')
		body = append(body, r.ProjectID...)
		body = append(body, '"')
	}
	body = append(body, `,"`...)
	body = append(body, r.Token...)
	body = append(body, `",`...)
	body = strconv.AppendInt(body, r.ExpiresIn, 10)
	body = append(body, ']')
	if len(body) > maxReply {
		return encodeFrame(r.array()) // for its error
	}
	out := make([]byte, 0, len(body)+maxHeader)
	out = strconv.AppendInt(out, int64(len(body)), 10)
	out = append(out, '\n')
	return append(out, body...), nil
}

// plain reports whether s is printable ASCII without the quote and the
// backslash: a JSON string of it is s in quotes.
func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// encodeFrame turns a payload array into one frame ready for a single
// write. The payload is pure ASCII, so its byte length is also the length
// the Python client measures after decoding. It fails only when the
// payload does not fit the 5-digit length prefix.
func encodeFrame(payload []any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(payload); err != nil {
		return nil, err
	}
	body := asciiJSON(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
	if len(body) > maxReply {
		return nil, fmt.Errorf("reply of %d bytes does not fit the length prefix", len(body))
	}
	out := make([]byte, 0, len(body)+maxHeader)
	out = strconv.AppendInt(out, int64(len(body)), 10)
	out = append(out, '\n')
	return append(out, body...), nil
}

// errorFrame is the frame for a failure. Messages are short; one that
// would not fit is cut, keeping the frame valid.
func errorFrame(msg string) []byte {
	const maxMsg = 4096
	if len(msg) > maxMsg {
		msg = msg[:maxMsg]
	}
	f, err := encodeFrame([]any{msg})
	if err != nil { // cannot happen with maxMsg far below maxReply
		return []byte(`21` + "\n" + `["internal error"]`)
	}
	return f
}

// asciiJSON rewrites every non-ASCII character of encoded JSON as a \u
// escape (a surrogate pair above U+FFFF). Non-ASCII bytes only occur
// inside strings, where the escape means the same character.
func asciiJSON(b []byte) []byte {
	i := 0
	for i < len(b) && b[i] < utf8.RuneSelf {
		i++
	}
	if i == len(b) {
		return b
	}
	out := append([]byte(nil), b[:i]...)
	for _, r := range string(b[i:]) {
		switch {
		case r < utf8.RuneSelf:
			out = append(out, byte(r))
		case r > 0xFFFF:
			r -= 0x10000
			out = fmt.Appendf(out, `\u%04x\u%04x`, 0xD800+(r>>10), 0xDC00+(r&0x3FF))
		default:
			out = fmt.Appendf(out, `\u%04x`, r)
		}
	}
	return out
}

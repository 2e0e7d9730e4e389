package localauth

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"unsafe"

	"credbroker/broker"
)

// answer is the encoded reply to GetOAuthToken for one token. The reply
// depends only on the token (its absolute expiry included), so the bytes
// of the latest one are kept and a request for the same cached token
// writes them as they are.
type answer struct {
	value  string
	expiry int64
	body   []byte   // JSON and the newline, as writeJSON sends
	length []string // the Content-Length header value
}

// oauthAnswer returns the reply for tok, from s.last when it is the same
// token.
func (s *Server) oauthAnswer(tok broker.Token) *answer {
	exp := tok.Expiry.Unix()
	if a := s.last.Load(); a != nil && a.expiry == exp && a.value == tok.Value {
		return a
	}
	body := appendOAuthJSON(nil, tok.Value, exp)
	if body == nil {
		// Characters the plain encoder does not handle: json.Marshal
		// escapes them as it always has.
		var err error
		if body, err = json.Marshal(oauthResponse{AccessToken: tok.Value, Expiry: exp}); err != nil {
			body = nil
		}
	}
	a := &answer{value: tok.Value, expiry: exp}
	if body != nil {
		a.body = append(body, '\n')
		a.length = []string{strconv.Itoa(len(a.body))}
		s.last.Store(a)
	}
	return a
}

func (a *answer) write(w http.ResponseWriter) {
	if a.body == nil {
		http.Error(w, "Internal Server Error. See logs.", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h["Content-Type"] = contentTypeJSON
	h["Content-Length"] = a.length
	w.WriteHeader(http.StatusOK)
	w.Write(a.body)
}

// appendOAuthJSON appends what json.Marshal makes of oauthResponse when
// the token needs no escaping, and returns nil when it does.
func appendOAuthJSON(dst []byte, token string, expiry int64) []byte {
	if !plainJSON(token) {
		return nil
	}
	dst = append(dst, `{"access_token":"`...)
	dst = append(dst, token...)
	dst = append(dst, `","expiry":`...)
	dst = strconv.AppendInt(dst, expiry, 10)
	return append(dst, '}')
}

// plainJSON reports whether s encodes as a JSON string unchanged by
// json.Marshal: printable ASCII without the quote, the backslash and the
// characters it escapes for HTML.
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		if !plainByte(s[i]) {
			return false
		}
	}
	return true
}

func plainByte(c byte) bool {
	return c >= 0x20 && c < 0x7f && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
}

// decodeSimple decodes the request bodies clients actually send without
// encoding/json's reflection: one flat object whose keys are exactly the
// four field names, each at most once, with strings (and an array of
// strings for scopes) holding no escapes or non-ASCII bytes. It reports
// false, leaving req in an unspecified state, for anything else; the
// caller then decodes with json.Unmarshal, which gives the same result
// wherever this returns true (FuzzDecodeSimple checks it) and the usual
// errors otherwise. Strings point into body, which must not change
// afterwards.
func decodeSimple(body []byte, req *request) bool {
	if len(body) == 0 {
		return false
	}
	p := parser{s: unsafe.String(unsafe.SliceData(body), len(body))}
	if !p.byte('{') {
		return false
	}
	var seen [4]bool
	if !p.byte('}') {
		for {
			key, ok := p.str()
			if !ok || !p.byte(':') {
				return false
			}
			var f int
			switch key {
			case "scopes":
				f = 0
				scopes, ok := p.strs()
				if !ok {
					return false
				}
				req.Scopes = scopes
			case "audience":
				f = 1
				if req.Audience, ok = p.str(); !ok {
					return false
				}
			case "secret":
				f = 2
				v, ok := p.str()
				if !ok {
					return false
				}
				b := make([]byte, base64.StdEncoding.DecodedLen(len(v)))
				n, err := base64.StdEncoding.Decode(b, []byte(v))
				if err != nil {
					return false
				}
				req.Secret = b[:n]
			case "account_id":
				f = 3
				if req.AccountID, ok = p.str(); !ok {
					return false
				}
			default:
				return false
			}
			if seen[f] {
				return false
			}
			seen[f] = true
			if p.byte('}') {
				break
			}
			if !p.byte(',') {
				return false
			}
		}
	}
	p.space()
	return p.i == len(p.s)
}

// parser reads the subset of JSON decodeSimple accepts.
type parser struct {
	s string
	i int
}

func (p *parser) space() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// byte consumes c, after white space, when it comes next.
func (p *parser) byte(c byte) bool {
	p.space()
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

// str reads a string of plain characters.
func (p *parser) str() (string, bool) {
	if !p.byte('"') {
		return "", false
	}
	start := p.i
	for p.i < len(p.s) {
		c := p.s[p.i]
		if c == '"' {
			v := p.s[start:p.i]
			p.i++
			return v, true
		}
		if c < 0x20 || c >= 0x7f || c == '\\' {
			return "", false
		}
		p.i++
	}
	return "", false
}

// strs reads an array of plain strings.
func (p *parser) strs() ([]string, bool) {
	if !p.byte('[') {
		return nil, false
	}
	out := make([]string, 0, 4)
	if p.byte(']') {
		return out, true
	}
	for {
		v, ok := p.str()
		if !ok {
			return nil, false
		}
		out = append(out, v)
		if p.byte(']') {
			return out, true
		}
		if !p.byte(',') {
			return nil, false
		}
	}
}

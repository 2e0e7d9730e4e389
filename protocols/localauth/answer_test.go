package localauth

import (
	"encoding/json"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"credbroker/broker"
)

// FuzzDecodeSimple: wherever the reflection-free decoder accepts a body,
// encoding/json decodes it to the same request.
func FuzzDecodeSimple(f *testing.F) {
	for _, s := range []string{
		`{"scopes":["a","b"],"secret":"c2VjcmV0","account_id":"task"}`,
		`{"audience":"https://x","secret":"c2VjcmV0","account_id":"task"}`,
		` { "scopes" : [ ] , "secret" : "" } `,
		`{"scopes":["a"],"scopes":["b"]}`,
		`{"Scopes":["a"]}`,
		`{"secret":"not base64!"}`,
		`{"scopes":["a\u0041"]}`,
		`{}`, `{} x`, `[]`, `null`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var fast request
		ok := decodeSimple(slices.Clone(body), &fast)
		var want request
		err := json.Unmarshal(body, &want)
		if !ok {
			return
		}
		if err != nil {
			t.Fatalf("decodeSimple accepted %q, json.Unmarshal: %v", body, err)
		}
		if !reflect.DeepEqual(fast, want) {
			t.Fatalf("%q: decodeSimple = %+v, json.Unmarshal = %+v", body, fast, want)
		}
	})
}

// The answer written from precomputed bytes is json.Marshal's, for plain
// tokens and for tokens that need escaping.
func TestOAuthAnswerMatchesMarshal(t *testing.T) {
	s := &Server{}
	exp := time.Unix(1795375074, 0)
	for _, v := range []string{"ya29.plain-token_0123", "tok[a,b]lt=3m0s", "a<b>&\"q\"", "caf\u00e9\u2028", strings.Repeat("x", 2000)} {
		want, _ := json.Marshal(oauthResponse{AccessToken: v, Expiry: exp.Unix()})
		want = append(want, '\n')
		for range 2 { // built, then from the cache
			a := s.oauthAnswer(broker.Token{Value: v, Expiry: exp})
			if string(a.body) != string(want) || a.length[0] != strconv.Itoa(len(want)) {
				t.Errorf("%q: answer %q (length %s), want %q", v, a.body, a.length[0], want)
			}
		}
	}
}

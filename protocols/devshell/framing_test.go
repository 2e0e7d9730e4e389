package devshell

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzReadRequest feeds arbitrary bytes to the request reader and checks
// that every outcome can be written as a valid reply frame.
func FuzzReadRequest(f *testing.F) {
	for _, s := range []string{
		"2\n[]", "2\n[]\n", "5\n[\"a\"]", "2\n{}", "8\n{BADJSON", "x\n[]", "[]", "",
		"-1\n[]", "99999\n[]", "2\n[]trailing", "0\n", "4\nnull", "+2\n[]", "65536\n[",
		"3\n[\xff]", "12\n[[[[[[[[[[[[", "2\r\n[]",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		err := readRequest(bufio.NewReader(bytes.NewReader(in)))
		if err == nil {
			return
		}
		var pe *protocolError
		if !errors.As(err, &pe) {
			t.Fatalf("non-protocol error %T: %v", err, err)
		}
		checkFrame(t, errorFrame(pe.msg))
	})
}

// FuzzEncodeFrame checks that any email and token give a frame whose
// prefix is the payload length, with an ASCII payload that decodes back.
func FuzzEncodeFrame(f *testing.F) {
	f.Add("sa-x@example.com", "tok1", "")
	f.Add("é😀@example.com", "to\"k\n", "proj")
	f.Add("\xff\xfe", "\u2028", "<&>")
	f.Fuzz(func(t *testing.T, email, token, project string) {
		fr, err := encodeFrame(reply{Email: email, Token: token, ProjectID: project, ExpiresIn: 5}.array())
		if err != nil {
			if len(email)+len(token)+len(project) < maxReply/7 {
				t.Fatalf("short reply refused: %v", err)
			}
			return
		}
		arr := checkFrame(t, fr)
		if len(arr) != 4 {
			t.Fatalf("array %v", arr)
		}
		if utf8.ValidString(email) && arr[0] != email {
			t.Fatalf("email %q came back as %q", email, arr[0])
		}
	})
}

func checkFrame(t *testing.T, fr []byte) []any {
	t.Helper()
	head, body, ok := bytes.Cut(fr, []byte("\n"))
	if !ok || len(head) > 5 {
		t.Fatalf("bad header in %q", fr)
	}
	n, err := strconv.Atoi(string(head))
	if err != nil || n != len(body) {
		t.Fatalf("length %q does not match payload of %d bytes", head, len(body))
	}
	for _, b := range body {
		if b >= utf8.RuneSelf {
			t.Fatalf("non-ASCII payload %q", body)
		}
	}
	var arr []any
	if err := json.Unmarshal(body, &arr); err != nil {
		t.Fatalf("payload %q: %v", body, err)
	}
	return arr
}

func TestAsciiJSON(t *testing.T) {
	tests := []struct{ in, want string }{
		{`"abc"`, `"abc"`},
		{`"é"`, `"\u00e9"`},
		{`"😀x"`, `"\ud83d\ude00x"`},
		{`["a","\u2028ü"]`, `["a","\u2028\u00fc"]`},
	}
	for _, tt := range tests {
		if got := string(asciiJSON([]byte(tt.in))); got != tt.want {
			t.Errorf("asciiJSON(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestErrorFrameCutsLongMessages(t *testing.T) {
	arr := checkFrame(t, errorFrame(strings.Repeat("é", 100000)))
	if len(arr) != 1 {
		t.Fatalf("array of %d", len(arr))
	}
}

// BenchmarkRequest measures one devshell request on a fresh connection
// against a bare TCP server doing the same framing with a fixed reply,
// and reports the ratio.
func BenchmarkRequest(b *testing.B) {
	s := &Server{Tokens: &fakeTokens{}, Account: "sa-x", Email: "sa-x@example.com", Logger: quietLogger,
		Now: func() time.Time { return testNow }}
	info, err := s.Start(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	bare := startBare(b)
	defer bare.Close()

	// Alternate the two so both see the same machine load.
	var dev, base time.Duration
	for b.Loop() {
		t0 := time.Now()
		roundTrip(b, v4(info))
		t1 := time.Now()
		roundTrip(b, bare.Addr().String())
		dev += t1.Sub(t0)
		base += time.Since(t1)
	}
	b.ReportMetric(float64(dev.Nanoseconds())/float64(b.N), "devshell-ns/req")
	b.ReportMetric(float64(base.Nanoseconds())/float64(b.N), "bare-ns/req")
	b.ReportMetric(float64(dev)/float64(base), "devshell/bare")
}

func roundTrip(b *testing.B, addr string) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "2\n[]"); err != nil {
		b.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if err != nil || string(got) != okReply {
		b.Fatalf("got %q, %v", got, err)
	}
}

// startBare is the baseline: accept, read the frame the same way, write a
// canned reply, close.
func startBare(b *testing.B) net.Listener {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if readRequest(bufio.NewReaderSize(c, 512)) != nil {
					return
				}
				_, _ = io.WriteString(c, okReply)
			}()
		}
	}()
	return ln
}

// The directly written reply is encodeFrame's, for plain strings and for
// ones that need escaping.
func TestEncodeReplyMatchesEncodeFrame(t *testing.T) {
	for _, r := range []reply{
		{Email: "e@x.iam.gserviceaccount.com", ProjectID: "proj", Token: "ya29.plain-token_0123", ExpiresIn: 1799},
		{Email: "e@x", Token: "tok", ExpiresIn: 1},
		{Email: "caf\u00e9", ProjectID: `q"p`, Token: "a<b>&\\", ExpiresIn: 3600},
		{Email: "ctl\x01", Token: "bad\xff\U0001F600", ExpiresIn: 5},
		{Email: "e", Token: strings.Repeat("x", maxReply), ExpiresIn: 5},
	} {
		got, gotErr := encodeReply(r)
		want, wantErr := encodeFrame(r.array())
		if string(got) != string(want) || (gotErr == nil) != (wantErr == nil) {
			t.Errorf("%+.40v: %q, %v; want %q, %v", r, got, gotErr, want, wantErr)
		}
	}
}

// FuzzEncodeReply: the directly written reply is always encodeFrame's.
func FuzzEncodeReply(f *testing.F) {
	f.Add("e@x.iam.gserviceaccount.com", "proj", "ya29.plain-token_0123", int64(1799))
	f.Add("caf\u00e9", `q"p`, "a<b>&\\", int64(3600))
	f.Add("", "", "", int64(0))
	f.Fuzz(func(t *testing.T, email, project, token string, expiresIn int64) {
		r := reply{Email: email, ProjectID: project, Token: token, ExpiresIn: expiresIn}
		got, gotErr := encodeReply(r)
		want, wantErr := encodeFrame(r.array())
		if string(got) != string(want) || (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("%+v: %q, %v; want %q, %v", r, got, gotErr, want, wantErr)
		}
	})
}

package bench

import (
	"os"
	"strconv"
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	var lat []time.Duration
	for i := 1000; i >= 1; i-- { // unsorted on purpose
		lat = append(lat, time.Duration(i)*100*time.Microsecond)
	}
	r := summarize(lat, 2*time.Second)
	want := Result{Requests: 1000, Elapsed: 2 * time.Second, RPS: 500,
		P50: 50100 * time.Microsecond, P99: 99100 * time.Microsecond, P999: 100 * time.Millisecond,
		Max: 100 * time.Millisecond, Over50ms: 500}
	if r != want {
		t.Errorf("summarize = %+v\nwant        %+v", r, want)
	}
	if r := summarize(nil, time.Second); r.Requests != 0 || r.P99 != 0 {
		t.Errorf("empty: %+v", r)
	}
}

func TestCPUTime(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc on this system")
	}
	if _, err := CPUTime(os.Getpid()); err != nil {
		t.Fatal(err)
	}
}

// frame prefixes a devshell payload with its length.
func frame(payload string) []byte { return []byte(strconv.Itoa(len(payload)) + "\n" + payload) }

// Each protocol's answers decode to the same outcomes.
func TestReadAnswers(t *testing.T) {
	at := time.Unix(1000, 0)
	tests := []struct {
		name   string
		got    Answer
		want   Outcome
		expiry int64
	}{
		{"local_auth token", readLocalAuth(200, []byte(`{"access_token":"t","expiry":4600}`), at), OK, 4600},
		{"local_auth fatal", readLocalAuth(200, []byte(`{"error_code":7,"error_message":"no"}`), at), Fatal, 0},
		{"local_auth transient", readLocalAuth(500, []byte("Internal Server Error. See logs.\n"), at), Transient, 0},
		{"local_auth refused", readLocalAuth(403, []byte("Host not allowed.\n"), at), Refused, 0},
		{"metadata token", readMetadata(200, []byte(`{"access_token":"t","expires_in":3599,"token_type":"Bearer"}`), at), OK, 4599},
		{"metadata transient", readMetadata(500, []byte("failed to mint the token: x\n"), at), Transient, 0},
		{"metadata fatal", readMetadata(403, []byte("failed to mint the token: x\n"), at), Fatal, 0},
		{"metadata refused", readMetadata(403, []byte("Forbidden Host header\n"), at), Refused, 0},
		{"gsutil token", readGsutil(200, []byte(`{"access_token":"t","expires_in":10,"token_type":"Bearer"}`), at), OK, 1010},
		{"gsutil transient", readGsutil(500, []byte(`{"error":"temporarily_unavailable","error_description":"cannot get access token: temporary failure, try again"}`), at), Transient, 0},
		{"gsutil fatal", readGsutil(400, []byte(`{"error":"invalid_grant","error_description":"cannot get access token: the credential was refused"}`), at), Fatal, 0},
		{"gsutil wrong secret", readGsutil(400, []byte(`{"error":"invalid_grant","error_description":"wrong refresh_token"}`), at), Refused, 0},
		{"devshell token", readDevshell(frame(`["e@x",null,"tok",1799]`), at), OK, 2799},
		{"devshell transient", readDevshell(frame(`["cannot get access token: temporary failure, try again"]`), at), Transient, 0},
		{"devshell fatal", readDevshell(frame(`["cannot get access token: the credential was refused"]`), at), Fatal, 0},
		{"devshell protocol error", readDevshell(frame(`["no newline in the first 6 bytes"]`), at), Refused, 0},
		{"devshell bad length", readDevshell([]byte("3\n[]"), at), Refused, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got.Outcome != tt.want {
				t.Errorf("outcome %v, want %v (%+v)", tt.got.Outcome, tt.want, tt.got)
			}
			if tt.expiry != 0 && tt.got.Expiry.Unix() != tt.expiry {
				t.Errorf("expiry %d, want %d", tt.got.Expiry.Unix(), tt.expiry)
			}
		})
	}
}

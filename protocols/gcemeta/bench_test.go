package gcemeta

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"credbroker/broker"
)

// BenchmarkCachedToken measures a token GET served from the broker's
// cache, end to end over loopback HTTP, against a bare net/http handler
// answering a body of the same size through the same client, and reports
// the ratio.
func BenchmarkCachedToken(b *testing.B) {
	src := newTestSource(b)
	br := broker.New(broker.Options{Logger: slog.New(slog.DiscardHandler)})
	defer br.Close()
	if err := br.AddAccount("ci", src); err != nil {
		b.Fatal(err)
	}
	s := &Server{
		Tokens:   br,
		Accounts: []Account{{ID: "ci", Email: e2eEmail, Scopes: []string{cloudPlatform}}},
		Logger:   slog.New(slog.DiscardHandler),
	}
	info, err := s.Start(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()

	client := &http.Client{Timeout: 10 * time.Second}
	fetch := func(url string) []byte {
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			b.Fatal(err)
		}
		req.Header.Set("Metadata-Flavor", "Google")
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d, %v", resp.StatusCode, err)
		}
		return body
	}
	tokenURL := "http://" + info.Addr + "/computeMetadata/v1/instance/service-accounts/default/token"
	payload := bytes.Repeat([]byte("x"), len(fetch(tokenURL))) // also fills the cache
	bare := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(payload)
	}))
	defer bare.Close()
	fetch(bare.URL)

	b.ResetTimer()
	start := time.Now()
	for range b.N {
		fetch(bare.URL)
	}
	bareTime := time.Since(start)
	start = time.Now()
	for range b.N {
		fetch(tokenURL)
	}
	ours := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(ours.Nanoseconds())/float64(b.N), "ns/token-get")
	b.ReportMetric(float64(bareTime.Nanoseconds())/float64(b.N), "ns/bare-get")
	b.ReportMetric(float64(ours)/float64(bareTime), "x-bare")
}

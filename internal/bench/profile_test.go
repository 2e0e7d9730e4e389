package bench

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"credbroker/broker"
	"credbroker/session"
)

type hourSource struct{}

func (hourSource) AccessToken(context.Context, []string, time.Duration) (broker.Token, error) {
	return broker.Token{Value: "ya29.bench-token-of-a-plausible-length-0123456789abcdefghijklmnopqrstuvwxyz", Expiry: time.Now().Add(time.Hour)}, nil
}
func (hourSource) IDToken(context.Context, string, time.Duration) (broker.Token, error) {
	return broker.Token{}, broker.Fatalf("no ID tokens")
}
func (hourSource) Email() string { return "bench@example.com" }

// BenchmarkCachedPath loads each front-end of an in-process session, and
// a bare server answering the same bytes and headers (the baseline of
// `credbroker bench`), for profiling the server side (go test -bench
// CachedPath -cpuprofile, -memprofile). The client shares the process, so
// only ratios of server functions in a profile mean anything
// (-bench CachedPath/local_auth profiles the front-end alone,
// CachedPath/baseline-local_auth its baseline); the
// difference in allocs/op between a front-end and its baseline is the
// front-end's own allocations per request.
func BenchmarkCachedPath(b *testing.B) {
	br := broker.New(broker.Options{Logger: slog.New(slog.DiscardHandler)})
	defer br.Close()
	_ = br.AddAccount("task", hourSource{})
	sess, err := session.Start(context.Background(), session.Config{
		Broker: br, Scopes: DefaultScopes, Frontends: session.AllFrontends(),
		ParentEnv: []string{"HOME=" + b.TempDir()}, TempDir: b.TempDir(), Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		b.Fatal(err)
	}
	defer sess.Close()
	ep, err := EndpointsFromEnv(sess.Env)
	if err != nil {
		b.Fatal(err)
	}
	for _, t := range ep.Targets(nil) {
		body, header, err := t.Sample(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		kind := "http"
		if !t.IsHTTP() {
			kind = "tcp"
		}
		addr, stop, err := StartBaseline(kind, body, header)
		if err != nil {
			b.Fatal(err)
		}
		defer stop()
		for _, tt := range []struct {
			name string
			t    Target
		}{{t.Name, t}, {"baseline-" + t.Name, t.WithAddr(addr)}} {
			b.Run(tt.name, func(b *testing.B) {
				hc := NewClient(1)
				ctx := context.Background()
				for b.Loop() {
					if err := tt.t.hit(ctx, hc); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

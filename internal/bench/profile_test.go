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

// BenchmarkCachedPath loads each front-end of an in-process session, for
// profiling the server side (go test -bench CachedPath -cpuprofile).
// The client shares the process, so only ratios of server functions in
// the profile mean anything.
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
		b.Run(t.Name, func(b *testing.B) {
			hc := NewClient(1)
			ctx := context.Background()
			for b.Loop() {
				if err := t.hit(ctx, hc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

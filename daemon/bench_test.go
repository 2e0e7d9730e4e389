package daemon

import (
	"context"
	"testing"
	"time"
)

// BenchmarkTrackedAccessToken measures what a session adds to a cached
// token request (metrics, audit line, last-use check) and reports it as a
// ratio to the bare broker measured in the same run.
func BenchmarkTrackedAccessToken(b *testing.B) {
	ctx := context.Background()
	scopes := []string{"https://www.googleapis.com/auth/cloud-platform"}
	bare := func() float64 {
		br := newBrokerB(b)
		br.AccessToken(ctx, "task", scopes, time.Minute)
		start := time.Now()
		for range b.N {
			if _, err := br.AccessToken(ctx, "task", scopes, time.Minute); err != nil {
				b.Fatal(err)
			}
		}
		return float64(time.Since(start).Nanoseconds()) / float64(b.N)
	}()

	d, err := New(ctx, Options{Paths: testPathsB(b), Key: make([]byte, 32), Broker: newBrokerB(b), Logger: quietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { d.Shutdown(ctx) })
	tok, err := d.repo.Create(ctx, createOpts())
	if err != nil {
		b.Fatal(err)
	}
	tr := &tracked{d: d, session: tok.PublicID, frontend: "gcemeta"}
	tr.AccessToken(ctx, "task", scopes, time.Minute)
	b.ResetTimer()
	for range b.N {
		if _, err := tr.AccessToken(ctx, "task", scopes, time.Minute); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	per := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(per/bare, "x-bare-broker")
}

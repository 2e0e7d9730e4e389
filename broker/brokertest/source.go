package brokertest

import (
	"context"
	"fmt"
	"sync"
	"time"

	"credbroker/broker"
)

// Source mints access tokens "<Prefix><n>" (n counting from 1) valid for
// an hour, for Email. It refuses ID tokens as unsupported. The zero value
// mints "tok-1", "tok-2", ... with no email.
type Source struct {
	Prefix string
	Mail   string

	mu sync.Mutex
	n  int
}

var _ broker.Source = (*Source)(nil)

// AccessToken returns the next numbered token.
func (s *Source) AccessToken(context.Context, []string, time.Duration) (broker.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	prefix := s.Prefix
	if prefix == "" {
		prefix = "tok-"
	}
	return broker.Token{Value: fmt.Sprintf("%s%d", prefix, s.n), Expiry: time.Now().Add(time.Hour)}, nil
}

// IDToken is not supported.
func (s *Source) IDToken(context.Context, string, time.Duration) (broker.Token, error) {
	return broker.Token{}, broker.NewFatal(broker.ErrNotSupported)
}

// Email returns Mail.
func (s *Source) Email() string { return s.Mail }

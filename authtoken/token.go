package authtoken

import (
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"
)

const (
	// IDPrefix starts every public id.
	IDPrefix = "at"
	// VersionPrefix starts every token value, so later formats can be told
	// apart.
	VersionPrefix = "0"

	idRandLen     = 10 // base62 characters after "at_"
	tokenRandSize = 32 // random bytes in a token value
	// valueDigits is the base62 width of tokenRandSize bytes.
	valueDigits = 43
	// A parser accepts values from this version's length up to twice the
	// randomness, for later versions that use more.
	minValueLen = 1 + valueDigits
	maxValueLen = 1 + 2*valueDigits
)

// Status is where a token is in its life.
type Status string

// Statuses. Pending becomes issued, failed or system error; the last
// three are final.
const (
	Pending     Status = "pending"
	Issued      Status = "issued"
	Failed      Status = "failed"
	SystemError Status = "system error"
)

// Token is a session's record. Value is set only by Repository.Create;
// every other way of getting a Token leaves it empty.
type Token struct {
	PublicID string
	// Value is the secret token. Shown to the session's creator once.
	Value    string
	OwnerUID int64
	Status   Status
	Reason   string

	CreateTime     time.Time
	UpdateTime     time.Time
	ExpirationTime time.Time
	LastAccessTime time.Time
	StaleAfter     time.Duration

	// Data is the caller's description of the session; never secret.
	Data []byte
}

// Credential returns the form a client presents: "<public id>_<value>".
func (t *Token) Credential() string { return Credential(t.PublicID, t.Value) }

// Credential joins a public id and a token value.
func Credential(publicID, value string) string { return publicID + "_" + value }

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

func isBase62(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z') {
			return false
		}
	}
	return true
}

// randomBase62 returns n characters drawn uniformly from base62.
func randomBase62(n int) (string, error) {
	var b strings.Builder
	max := big.NewInt(int64(len(base62)))
	for range n {
		i, err := rand.Int(rand.Reader, max)
		if err != nil {
			return "", err
		}
		b.WriteByte(base62[i.Int64()])
	}
	return b.String(), nil
}

// NewPublicID returns a fresh public id.
func NewPublicID() (string, error) {
	s, err := randomBase62(idRandLen)
	if err != nil {
		return "", fmt.Errorf("authtoken: public id: %w", err)
	}
	return IDPrefix + "_" + s, nil
}

// NewValue returns a fresh secret token value.
func NewValue() (string, error) {
	raw := make([]byte, tokenRandSize)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("authtoken: token value: %w", err)
	}
	digits := new(big.Int).SetBytes(raw).Text(62)
	// Pad to the full width, so every value has the same length.
	return VersionPrefix + strings.Repeat("0", valueDigits-len(digits)) + digits, nil
}

// ErrMalformed is returned for a credential or id that is not in the
// expected shape. It never says more, so it cannot echo a secret.
var ErrMalformed = errors.New("authtoken: malformed session token")

// ValidPublicID reports whether id is "at_" and ten base62 characters.
func ValidPublicID(id string) bool {
	rest, ok := strings.CutPrefix(id, IDPrefix+"_")
	return ok && len(rest) == idRandLen && isBase62(rest)
}

// ValidValue reports whether v has the shape of a token value.
func ValidValue(v string) bool {
	rest, ok := strings.CutPrefix(v, VersionPrefix)
	return ok && len(v) >= minValueLen && len(v) <= maxValueLen && isBase62(rest)
}

// ParseCredential splits a presented credential into its public id and
// token value, checking both shapes. Surrounding spaces are not allowed.
func ParseCredential(s string) (publicID, value string, err error) {
	const idLen = len(IDPrefix) + 1 + idRandLen
	if len(s) < idLen+1 || s[idLen] != '_' {
		return "", "", ErrMalformed
	}
	publicID, value = s[:idLen], s[idLen+1:]
	if !ValidPublicID(publicID) || !ValidValue(value) {
		return "", "", ErrMalformed
	}
	return publicID, value, nil
}

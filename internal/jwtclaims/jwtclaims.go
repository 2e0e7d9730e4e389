package jwtclaims

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"time"
)

// maxExp bounds exp claims (the year 5138), so a hostile value cannot
// overflow a time.Time or make a token live forever in a cache.
const maxExp = 1e11

// Decode unmarshals the payload of the JWT tok into v. Its errors read as
// the end of a sentence about the token ("the id_token " + err).
func Decode(tok string, v any) error {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return errors.New("is not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return errors.New("has a payload that is not base64url")
	}
	if err := json.Unmarshal(payload, v); err != nil {
		return errors.New("has a payload that is not JSON")
	}
	return nil
}

// Expiry returns the time of the JWT's exp claim.
func Expiry(tok string) (time.Time, error) {
	var c struct {
		Exp float64 `json:"exp"`
	}
	if err := Decode(tok, &c); err != nil {
		return time.Time{}, err
	}
	// Below 1 truncates to the epoch itself: no valid exp either.
	if c.Exp < 1 || c.Exp > maxExp {
		return time.Time{}, errors.New("has no valid exp claim")
	}
	return time.Unix(int64(c.Exp), 0), nil
}

// Email returns the JWT's email claim, or "" when it has none.
func Email(tok string) string {
	var c struct {
		Email string `json:"email"`
	}
	_ = Decode(tok, &c)
	return c.Email
}

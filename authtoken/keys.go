package authtoken

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
)

// KeySize is the size of the key a Repository is given.
const KeySize = 32

// Keys seal and hash token values. Make one with NewKeys.
type Keys struct {
	hashKey []byte
	aead    cipher.AEAD
	check   []byte
}

// NewKeys derives the hashing and encryption keys from a 32-byte key.
func NewKeys(key []byte) (*Keys, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("authtoken: the key must be %d bytes, not %d", KeySize, len(key))
	}
	derive := func(label string) []byte {
		k, err := hkdf.Key(sha256.New, key, nil, "credbroker authtoken "+label, 32)
		if err != nil {
			panic(err) // only for lengths out of range, excluded here
		}
		return k
	}
	block, err := aes.NewCipher(derive("encryption"))
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	k := &Keys{hashKey: derive("hash"), aead: aead}
	k.check = k.mac("key check")
	return k, nil
}

// NewKey returns a fresh random key.
func NewKey() []byte {
	k := make([]byte, KeySize)
	rand.Read(k) // never fails
	return k
}

// ParseKey reads a key written as standard base64, as in a key file or
// an environment variable.
func ParseKey(s string) ([]byte, error) {
	k, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(k) != KeySize {
		return nil, fmt.Errorf("authtoken: a key is %d bytes in standard base64", KeySize)
	}
	return k, nil
}

// FormatKey writes a key as ParseKey reads it.
func FormatKey(k []byte) string { return base64.StdEncoding.EncodeToString(k) }

func (k *Keys) mac(s string) []byte {
	h := hmac.New(sha256.New, k.hashKey)
	h.Write([]byte(s))
	return h.Sum(nil)
}

// Hash returns the lookup hash of a token value.
func (k *Keys) Hash(value string) string {
	return base64.RawURLEncoding.EncodeToString(k.mac("token " + value))
}

// Seal encrypts a token value, bound to its public id so a ciphertext
// cannot be moved to another record.
func (k *Keys) Seal(publicID, value string) []byte {
	nonce := make([]byte, k.aead.NonceSize())
	rand.Read(nonce)
	return k.aead.Seal(nonce, nonce, []byte(value), []byte(publicID))
}

// ErrWrongKey means a ciphertext or the store's key check does not match
// the key: the daemon was given another key than the one it used before.
var ErrWrongKey = errors.New("authtoken: the key does not match the stored tokens")

// Open decrypts what Seal made.
func (k *Keys) Open(publicID string, sealed []byte) (string, error) {
	n := k.aead.NonceSize()
	if len(sealed) < n {
		return "", ErrWrongKey
	}
	plain, err := k.aead.Open(nil, sealed[:n], sealed[n:], []byte(publicID))
	if err != nil {
		return "", ErrWrongKey
	}
	return string(plain), nil
}

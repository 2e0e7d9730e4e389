package openid

import (
	"bufio"
	"bytes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"golang.org/x/crypto/chacha20poly1305"
)

// KeySize is the size of an AEAD key: XChaCha20-Poly1305 takes 256 bits.
const KeySize = chacha20poly1305.KeySize

// keyIDPattern keeps key ids short and free of the separator used in
// sealed values.
var keyIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,16}$`)

// Keyring holds the AEAD keys that seal cookies and refresh tokens. The
// primary key seals; every key opens, which is how keys rotate: add a new
// primary, keep the old one until the cookies it sealed have expired, then
// drop it.
type Keyring struct {
	primary string
	aeads   map[string]cipher.AEAD
}

// Key is one named AEAD key.
type Key struct {
	ID     string
	Secret []byte // KeySize bytes; a secret, never logged
}

// NewKeyring returns a keyring sealing with keys[0] and opening with all.
func NewKeyring(keys ...Key) (*Keyring, error) {
	if len(keys) == 0 {
		return nil, errors.New("openid: a keyring needs at least one key")
	}
	kr := &Keyring{primary: keys[0].ID, aeads: map[string]cipher.AEAD{}}
	for _, k := range keys {
		if !keyIDPattern.MatchString(k.ID) {
			return nil, fmt.Errorf("openid: key id %q: use 1 to 16 of A-Z a-z 0-9 _ -", k.ID)
		}
		if _, dup := kr.aeads[k.ID]; dup {
			return nil, fmt.Errorf("openid: key id %q given twice", k.ID)
		}
		if len(k.Secret) != KeySize {
			// The length is no secret; the key is.
			return nil, fmt.Errorf("openid: key %q has %d bytes, want %d", k.ID, len(k.Secret), KeySize)
		}
		a, err := chacha20poly1305.NewX(k.Secret)
		if err != nil {
			return nil, fmt.Errorf("openid: key %q: %w", k.ID, err)
		}
		kr.aeads[k.ID] = a
	}
	return kr, nil
}

// GenerateKey returns a new random key named id.
func GenerateKey(id string) Key {
	k := Key{ID: id, Secret: make([]byte, KeySize)}
	rand.Read(k.Secret) // never fails; crashes the process if the OS has no randomness
	return k
}

// ParseKeyring reads a key file: one key a line as "ID BASE64", where
// BASE64 is the standard encoding of KeySize random bytes; the first key
// is the primary. Blank lines and lines starting with # are skipped.
func ParseKeyring(data []byte) (*Keyring, error) {
	var keys []Key
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 2 {
			return nil, fmt.Errorf("openid: key file line %d: want \"ID BASE64\"", n)
		}
		secret, err := base64.StdEncoding.DecodeString(fields[1])
		if err != nil {
			return nil, fmt.Errorf("openid: key file line %d: the key is not standard base64", n)
		}
		keys = append(keys, Key{ID: fields[0], Secret: secret})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("openid: key file: %w", err)
	}
	return NewKeyring(keys...)
}

// FormatKey is the key-file line for k.
func FormatKey(k Key) string {
	return k.ID + " " + base64.StdEncoding.EncodeToString(k.Secret) + "\n"
}

// errUnsealable is every reason a sealed value does not open; callers
// treat them alike, and the reason is not told to the sender.
var errUnsealable = errors.New("openid: sealed value does not open")

// seal encrypts plaintext under the primary key, binding it to ad, and
// returns "KEYID.BASE64URL(nonce|ciphertext)".
func (kr *Keyring) seal(plaintext, ad []byte) string {
	a := kr.aeads[kr.primary]
	buf := make([]byte, a.NonceSize(), a.NonceSize()+len(plaintext)+a.Overhead())
	rand.Read(buf)
	buf = a.Seal(buf, buf, plaintext, kr.bindAD(kr.primary, ad))
	return kr.primary + "." + base64.RawURLEncoding.EncodeToString(buf)
}

// open reverses seal with whichever key the value names.
func (kr *Keyring) open(sealed string, ad []byte) ([]byte, error) {
	id, body, ok := strings.Cut(sealed, ".")
	if !ok {
		return nil, errUnsealable
	}
	a := kr.aeads[id]
	if a == nil {
		return nil, errUnsealable
	}
	buf, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil || len(buf) < a.NonceSize()+a.Overhead() {
		return nil, errUnsealable
	}
	out, err := a.Open(nil, buf[:a.NonceSize()], buf[a.NonceSize():], kr.bindAD(id, ad))
	if err != nil {
		return nil, errUnsealable
	}
	return out, nil
}

// bindAD adds the key id to the associated data so a value cannot be
// relabelled with another id of the same key.
func (kr *Keyring) bindAD(id string, ad []byte) []byte {
	out := make([]byte, 0, len(id)+1+len(ad))
	out = append(out, id...)
	out = append(out, 0)
	return append(out, ad...)
}

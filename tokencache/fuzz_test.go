package tokencache

import (
	"crypto/aes"
	"crypto/cipher"
	"testing"
)

// FuzzDecrypt feeds arbitrary file content to the reader: it must answer
// with an error or entries, never panic.
func FuzzDecrypt(f *testing.F) {
	block, _ := aes.NewCipher(make([]byte, keySize))
	aead, _ := cipher.NewGCM(block)
	good, _ := Encrypt(aead, map[string]Entry{"k": {RefreshToken: "rt", Scopes: []string{"s"}}})
	f.Add(good)
	f.Add([]byte(header))
	f.Add([]byte{})
	f.Add(good[:len(good)-3])
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := Decrypt(aead, data)
		if err == nil && entries == nil {
			t.Fatal("nil entries without an error")
		}
	})
}

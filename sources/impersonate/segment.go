package impersonate

import (
	"encoding/base64"
	"strings"
)

// decodeSegment decodes a JWT segment, padded or not.
func decodeSegment(seg string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(seg, "="))
}

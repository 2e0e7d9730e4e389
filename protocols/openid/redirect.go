package openid

import (
	"errors"
	"net/url"
	"strings"
)

// maxReturnLen bounds r; a longer one is no path an app needs.
const maxReturnLen = 2048

var errBadReturn = errors.New("r must be a path on this site, like /app")

// returnPath checks the r parameter of login and logout: a path on this
// origin, never anything a browser would resolve to another host. Browsers
// treat "\" like "/" and skip tabs and newlines, so "/\evil" and "/\t/evil"
// would leave the origin; both are refused, as is any scheme or authority.
func returnPath(r string) (string, error) {
	if r == "" {
		return "/", nil
	}
	if len(r) > maxReturnLen || r[0] != '/' || strings.HasPrefix(r, "//") {
		return "", errBadReturn
	}
	for _, c := range r {
		if c < 0x20 || c == 0x7f || c == '\\' {
			return "", errBadReturn
		}
	}
	u, err := url.Parse(r)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" || !strings.HasPrefix(u.Path, "/") {
		return "", errBadReturn
	}
	return r, nil
}

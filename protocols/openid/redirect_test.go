package openid

import (
	"net/url"
	"testing"
)

func FuzzReturnPath(f *testing.F) {
	for _, s := range []string{"", "/", "/a?b=c#d", "//evil", "/\\evil", "https://evil/", "/%2F%2Fevil", "/.//evil", "/..//evil", "/\t/evil", "/a/../../evil"} {
		f.Add(s)
	}
	base, _ := url.Parse("http://127.0.0.1:8800/app/page")
	f.Fuzz(func(t *testing.T, r string) {
		got, err := returnPath(r)
		if err != nil {
			return
		}
		// Whatever is accepted must resolve, as a browser resolves a
		// Location, to this origin.
		u, err := url.Parse(got)
		if err != nil {
			t.Fatalf("accepted %q does not parse: %v", got, err)
		}
		abs := base.ResolveReference(u)
		if abs.Scheme != base.Scheme || abs.Host != base.Host {
			t.Fatalf("accepted %q leads to %s", got, abs)
		}
	})
}

// Package dashboard is the broker owner's page at "/": the daemon's live
// sessions with a button to revoke each, the token requests of the last
// hour as a chart, and the recent audit entries. It is an http.Handler
// that the openid server mounts as its Home, so the page shares that
// server's origin, its sign-in and its TLS.
//
// The page is rendered on the server with html/template from files
// embedded in the binary, and works without JavaScript: the chart is
// inline SVG (bars of tokens issued per minute, a line of the cache hit
// ratio per minute), and revoking is a plain form POST. Routes:
//
//	GET  /                         the page
//	GET  /static/...               its style sheet
//	POST /sessions/{id}/revoke     end a session at once, then 303 to /
//
// Who may see the page is the caller's decision, given as Authorize: in
// local mode the owner always, in production the signed-in person if
// their email is in the allowed list. Anyone else gets 403 and a page
// with a link to sign in (SignIn, by default
// /auth/openid/login?r=/); a redirect would loop for a signed-in person
// who is not allowed.
//
// A revoke must carry a CSRF token: an HMAC-SHA256, under a key drawn at
// random when the handler is made, of the authorized identity. It is
// compared in constant time, so it stays valid for that person until the
// process restarts and is worthless to anyone else. Requests a browser
// marks as cross-site (Sec-Fetch-Site other than same-origin, or an
// Origin that is not this server's) are refused before the token is
// looked at. Refusals are 403 and revoke nothing.
//
// Nothing on the page is a secret: the daemon's Overview holds no token,
// session credential or environment value by construction, and every
// name on the page (accounts, scopes, details) is escaped by
// html/template. The page sets a Content-Security-Policy that allows no
// script, styles only from /static/, and forms posting only to itself.
package dashboard

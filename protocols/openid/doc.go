// Package openid serves the browser sign-in endpoints under /auth/openid/,
// so that a single-page app on the same origin can get the signed-in user's
// OAuth access token and OpenID Connect ID token from JavaScript and send
// them in an Authorization header to its backends.
//
// # Endpoints
//
// All four answer GET only, on the origin that serves the app:
//
//	/auth/openid/login?r=PATH    start signing in, end up at PATH with a session cookie
//	/auth/openid/callback        where the identity provider sends the browser back
//	/auth/openid/logout?r=PATH   end the session, unset the cookie, go to PATH
//	/auth/openid/state           JSON: who is signed in, and fresh tokens
//
// PATH must be a path on the same origin ("/app?x=1"); anything that could
// leave the origin ("//evil", "https://evil", "/\evil") is refused with
// 400, so the endpoints are no open redirect. An empty r means "/".
//
// /auth/openid/state answers 200 with a JSON object. With no valid session
// it is {"identity":"anonymous:anonymous"}. With one it is
//
//	{"identity":"user:EMAIL","email":"EMAIL","picture":"URL",
//	 "accessToken":"...","accessTokenExpiry":UNIX,"accessTokenExpiresIn":SECONDS,
//	 "idToken":"...","idTokenExpiry":UNIX,"idTokenExpiresIn":SECONDS}
//
// with "picture" left out when the provider gave none. The tokens have at
// least MinTokenLifetime left, so a page may cache them for ExpiresIn
// seconds. Internal failures (a provider that is down, a store that cannot
// be read) answer 500 with a one-line plain-text message that never holds a
// secret. A session whose user revoked the app's access answers anonymous
// and is deleted.
//
// # Production mode
//
// With an OIDC configuration the server runs the OpenID Connect
// authorization-code flow against the provider found by issuer discovery
// (Google by default): login stores a one-time sign-in record keyed by a
// random state, puts state, nonce and the PKCE verifier in a short-lived
// encrypted cookie bound to the browser, and redirects to the provider. The
// callback accepts a state only once, only from the browser holding the
// matching cookie, exchanges the code with the verifier, verifies the ID
// token (signature by the provider's keys, issuer, audience, expiry, nonce)
// and creates a browser session.
//
// The session's refresh token lives only in the Store, sealed with the
// server's AEAD keys. The session cookie carries nothing but a random
// session reference sealed with the same keys (XChaCha20-Poly1305, a key id
// in the clear so keys can rotate); it is HttpOnly, SameSite=Lax, and
// Secure with the __Host- prefix when the redirect URL is https or the
// server itself speaks TLS. /state
// mints tokens through a broker (one account per browser session, whose
// source uses the refresh token), so they are cached and refreshed ahead
// like every other token credbroker serves.
//
// # Local mode
//
// Without an OIDC configuration nothing needs setting up: sign-in is faked
// (login at once creates a session in memory, sealed with a key made at
// start) and /state serves the broker's own default account. This is for
// developing an app on localhost against the developer's own credentials;
// the status page says which mode runs.
//
// # Where it listens
//
// By default the server binds 127.0.0.1 on Server.Port, through
// internal/loopback like every front-end. Server.TLSConfig makes it speak
// HTTPS only; Server.Addr makes it listen elsewhere, e.g. 0.0.0.0:8443 for
// browsers on other machines. An Addr that is not loopback is refused
// unless the server has both TLS and production mode: local mode serves the
// broker's own tokens to whoever asks, and session cookies must not cross a
// network in the clear. Off loopback the same limits hold: header, read,
// write and idle timeouts, a header size limit, a cap on open connections
// (at the cap newcomers wait to be accepted), TLS 1.2 or later over
// HTTP/1.1, and Close ends every connection, idle keep-alive ones included.
// Server.AllowPeer restricts a loopback server to some local processes
// (loopback.SameUser: the user's own browser), which local mode wants on a
// machine shared with other users.
//
// # Hosts
//
// Every request's Host must name the server (127.0.0.1, [::1] or localhost
// with its port, or one of Server.Hosts), which defeats DNS rebinding. A
// server reached by another name, through a proxy or on Addr, lists that
// name in Server.Hosts. /state also refuses requests a browser marks as
// cross-site.
//
// # Who is signed in
//
// Server.SignedIn tells pages served beside the endpoints (Server.Home, a
// dashboard) who made a request: in local mode always the broker's owner
// (the default account's email); in production mode the email of the
// browser session the request's cookie refers to, if that cookie opens, has
// not expired and its session is still stored. Deciding what that person
// may see is the page's business.
package openid

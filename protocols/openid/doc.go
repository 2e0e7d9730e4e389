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
// Secure with the __Host- prefix when the redirect URL is https. /state
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
// # Hosts
//
// Every request's Host must name the server (127.0.0.1, [::1] or localhost
// with its port, or one of Server.Hosts), which defeats DNS rebinding.
// /state also refuses requests a browser marks as cross-site.
package openid

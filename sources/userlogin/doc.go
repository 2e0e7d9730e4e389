// Package userlogin is the credential of a person: their Google login,
// obtained once with `credbroker login` and kept as a refresh token.
//
// Login runs the OAuth 2.0 authorization-code flow for installed apps
// (RFC 8252) with PKCE (RFC 7636, S256): it listens on a random
// 127.0.0.1 port, sends the user's browser to the authorization endpoint
// with redirect_uri=http://127.0.0.1:PORT/, a random state and the code
// challenge, receives the code on that port, checks the state in constant
// time and exchanges the code (with the verifier and the client's
// credentials) at the token endpoint. access_type=offline and
// prompt=consent make Google return a refresh token. When no browser can
// be opened (a remote shell, --no-browser) the URL is printed and the user
// pastes back the address the browser was redirected to, or just its code.
//
// The refresh token, the granted scopes, the email (read from the login's
// ID token) and the last access token are stored in a tokencache.Cache
// under "user/<client id>". A Source reads them from there, refreshes the
// access token through the refresh_token grant when it has less than the
// caller's minimum lifetime left, and writes the new one back while holding
// the cache's lock, so several brokers of the user make one refresh.
// FromAuthorizedUser reads gcloud's "authorized_user" JSON file
// (client_id, client_secret, refresh_token) instead, keeping its tokens in
// memory only.
//
// A user's token carries only the scopes of the login. A request for a
// scope outside them is a fatal error that names the missing scopes and
// says how to log in with them; Options.AllowOtherScopes serves the login's
// own token anyway, with a warning. Likewise an ID token comes only from
// the login's id_token, whose audience is the OAuth client id: other
// audiences are refused unless AllowOtherScopes.
//
// Errors: network failures, 5xx, 408 and 429 are transient (retried a few
// times here); invalid_grant (revoked or expired login) is fatal and says
// to run `credbroker login`; other 4xx are fatal. Logout revokes the
// refresh token at the revocation endpoint and deletes it locally. No error
// or log line carries a token, code, verifier or client secret.
package userlogin

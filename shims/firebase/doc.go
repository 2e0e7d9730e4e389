// Package firebase serves the OAuth 2.0 token endpoint firebase-tools
// (the "firebase" CLI) refreshes its access token at, so the CLI runs with
// the session's identity in its non-interactive mode.
//
// # How firebase-tools finds it
//
// With FIREBASE_TOKEN set, firebase-tools treats the value as a refresh
// token and, whenever it needs an access token, POSTs it to
// "$FIREBASE_TOKEN_URL/oauth2/v3/token" (FIREBASE_TOKEN_URL replaces
// https://www.googleapis.com, no trailing slash) with the fields
//
//	refresh_token=<FIREBASE_TOKEN>&client_id=..&client_secret=..&grant_type=refresh_token&scope=..
//
// as multipart/form-data (recent versions) or
// application/x-www-form-urlencoded (older ones); both are accepted.
//
// # Endpoint
//
//   - POST /oauth2/v3/token: 200 application/json
//     {"access_token":"..","expires_in":N,"token_type":"Bearer"} with
//     expires_in in whole seconds, at least 1. The token is for the
//     configured scopes (the session's, plus the firebase scope); the
//     requested scope is ignored. Errors are RFC 6749 §5.2 JSON
//     {"error":..,"error_description":..}: a grant_type other than
//     refresh_token gives 400 unsupported_grant_type; a refresh token that
//     is not the session's secret 400 invalid_grant; a broker failure 400
//     invalid_grant, or 500 temporarily_unavailable when retrying may help;
//     a body that is not a form 400 invalid_request; another method 405.
//   - anything else: 404.
//
// # Differences from LUCI's shim
//
// LUCI puts a fixed placeholder into FIREBASE_TOKEN and never checks it,
// so any local process (or a web page's form POST) gets tokens. Here
// FIREBASE_TOKEN is 32 random bytes (URL-safe base64) made at Start and
// compared in constant time, the Host header must name the server, and
// requests with browser headers (Origin, Referer, Sec-Fetch-Site,
// Sec-Fetch-Dest, Sec-Fetch-User) are refused. Sec-Fetch-Mode alone is
// not a browser's mark: Node's built-in fetch sends it on every request. Tokens have at least
// MinLifetime (15 minutes) left: firebase-tools refreshes any token with
// less than that, so a shorter one would be fetched again on every call.
package firebase

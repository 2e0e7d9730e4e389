// Package dev is credbroker's embedded offline identity, used by
// `credbroker demo` and `--dev` so that every front-end can be tried
// without any Google credential or network.
//
// The Source serves one account, dev@credbroker.local, with no
// configuration:
//
//   - access tokens for any scopes are opaque strings that start with
//     "credbroker-dev." followed by random base64url, so they can never be
//     mistaken for Google tokens (those start with "ya29.") and no Google
//     API accepts them;
//   - ID tokens for any audience are RS256 JWTs with iss
//     "https://credbroker.local/dev", aud, sub, email, email_verified, iat
//     and exp, and a kid header; they are signed with an RSA key generated
//     on first use (an ID token or the JWKS) and never written anywhere, so they verify
//     only against that Source's JWKS for the life of the process.
//
// Tokens live one hour, or longer when a caller's minimum lifetime asks
// for more. Warning is the notice the command line prints when it starts
// with this identity.
package dev

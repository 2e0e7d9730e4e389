// Package fakeoidc is an OpenID Connect provider for tests: a discovery
// document, an authorization endpoint that signs the configured user in at
// once and redirects back with a code, a token endpoint (authorization
// code with PKCE S256, refresh token), RS256 ID tokens verifiable by its
// JWKS, token revocation and a userinfo endpoint a test backend can check
// access tokens with. It listens on loopback only and never calls out.
package fakeoidc

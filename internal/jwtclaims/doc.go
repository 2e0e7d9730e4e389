// Package jwtclaims reads the claims of JSON Web Tokens without checking
// their signature.
//
// Credential sources get ID tokens from an upstream they already trust
// over TLS or loopback (Google's token endpoint, the IAM Credentials API, a
// metadata server, a user's OAuth login) and hand them on unchanged; the
// relying party verifies the signature. What a source needs is the token's
// exp claim, to know how long it may be cached, and sometimes its email.
// Payloads may come padded or unpadded (older clients pad base64url), and
// hostile values get an error, never a panic or a time far in the future.
package jwtclaims

// Package serviceaccount mints tokens from a Google service-account key,
// the JSON file of type "service_account" that `gcloud iam
// service-accounts keys create` writes.
//
// Both kinds of token come from one exchange with the key's own token_uri
// (RFC 7523, the JWT-bearer grant): the Source signs a short assertion
// with the key's RSA private key (RS256, kid = private_key_id, iss = the
// account's email, aud = token_uri, one hour between iat and exp) and
// posts it as
//
//	grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<JWT>
//
// With a "scope" claim (the scopes, space-separated) the endpoint answers
// {"access_token","expires_in","token_type"}; with a "target_audience"
// claim it answers {"id_token"}, an ID token whose expiry is read from its
// own exp claim. Any scopes and any audience can be asked for.
//
// Failures are classified for the broker: network errors, timeouts, HTTP
// 5xx, 408 and 429 are transient and are retried here with a bounded,
// jittered exponential backoff that honours a short Retry-After and never
// outlives the caller's context; any other answer is fatal and reports the
// endpoint's OAuth error and error_description, never the raw body.
//
// Problems with the key file itself (missing, unreadable, not JSON, a
// missing field, a private key that does not parse) are reported when the
// Source is made, naming the file and the field. No error, log line or
// panic ever carries the private key, an assertion or a token.
package serviceaccount

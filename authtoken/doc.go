// Package authtoken is the record behind a broker session: a public id
// that admins use to list, show and revoke it, and a secret token that
// only the session's holder ever sees.
//
// The public id is "at_" and ten base62 characters. The token value is a
// version prefix ("0") and 32 or more random bytes written in base62; a
// client presents both together as a credential, "<public id>_<value>".
// At rest the value exists only as a keyed hash (HMAC-SHA256, to find the
// record a presented value belongs to) and as an AES-GCM ciphertext bound
// to the public id (so a restarted daemon can give the session's servers
// their secret back). Both keys are derived from one 32-byte key that the
// daemon keeps in a 0600 file or receives through its environment.
//
// A token has a time-to-live and a staleness limit: Validate removes a
// token that has expired or gone unused for too long, and records its use
// at most once a minute so that busy sessions do not write on every
// request. Its status starts as pending while the session's servers
// start, then becomes issued, or failed (with a reason) when they cannot,
// or system error when the broker itself broke; CloseExpiredPending fails
// the pending tokens that never finished. Lookups by public id never
// return the secret.
package authtoken

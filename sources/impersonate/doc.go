// Package impersonate mints tokens of another service account through the
// IAM Credentials API, with any other credential as the base: a key, a
// user's login, an upstream LUCI context or metadata server.
//
// The base mints a cloud-platform access token (kept here while it has
// more than five minutes left), which authorizes
//
//	POST {endpoint}/v1/projects/-/serviceAccounts/{email}:generateAccessToken
//	     {"scope":[...],"delegates":[...],"lifetime":"3600s"}
//	  -> {"accessToken":"...","expireTime":"RFC 3339"}
//	POST {endpoint}/v1/projects/-/serviceAccounts/{email}:generateIdToken
//	     {"audience":"...","includeEmail":true,"delegates":[...]}
//	  -> {"token":"<JWT>"}
//
// Delegates (for a chain of Token Creator grants) are sent as
// "projects/-/serviceAccounts/<email>". The endpoint is Google's unless
// configured (tests use internal/fakegoogle). Any scopes and audience can
// be asked for.
//
// Errors: the base's errors keep their class; from the API, network
// failures, 5xx and 429 are transient (retried a few times), other 4xx
// fatal with Google's status and message (e.g. PERMISSION_DENIED when the
// base lacks roles/iam.serviceAccountTokenCreator on the target).
package impersonate

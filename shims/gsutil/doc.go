// Package gsutil gives gsutil the session's identity through its own
// configuration file, .boto, and, where needed, a local OAuth 2.0 token
// endpoint.
//
// # Modes
//
// In TokenServer mode the .boto holds a random refresh token
// ([Credentials] gs_oauth2_refresh_token) and points [OAuth2]
// provider_token_uri at http://127.0.0.1:PORT/token. gsutil treats it as a
// user login: whenever it needs an access token it POSTs
//
//	grant_type=refresh_token&refresh_token=<secret>&client_id=..&client_secret=..
//
// and the server answers with a token from the broker. In GCE mode the
// .boto says "[GoogleCompute] service_account = default" and gsutil asks
// the metadata server (the session's gcemeta front-end) instead; nothing
// is served here.
//
// # Token endpoint
//
//   - POST /token (also /gsutil/token, the path luci-go's files name):
//     200 application/json
//     {"access_token":"..","expires_in":N,"token_type":"Bearer"}, with
//     expires_in in whole seconds, truncated, at least 1, and at least
//     MinLifetime when the broker can give it. Errors follow RFC 6749
//     §5.2 as JSON {"error":..,"error_description":..}, which oauth2 clients
//     parse (luci-go answered in plain text): a grant_type other than
//     refresh_token gives 400 unsupported_grant_type; a wrong or missing
//     refresh token 400 invalid_grant; a broker failure 400 invalid_grant,
//     or 500 temporarily_unavailable when retrying may help; a method other
//     than POST 405.
//   - /authorization (and /gsutil/authorization): 501 with an empty body.
//     The .boto must name an authorization URI; only an interactive
//     "gsutil config" would use it.
//   - anything else: 404.
//
// The refresh token is 48 random bytes in standard base64 (64 characters
// that may include '+' and '/'), compared in constant time. Clients send
// it form-encoded, as OAuth clients do; a raw '+' would arrive as a space
// and be refused. Requests whose Host header is not the server's loopback
// address, or that carry browser headers, are refused with 403. The
// listener is 127.0.0.1 only, the address the .boto names.
//
// # The .boto file
//
// The file is written fresh, mode 0600, in a new 0700 state directory
// that also serves as gsutil's state_dir, so its credential store starts
// empty. Close stops the server and removes the directory. The session
// sets BOTO_CONFIG to the file and removes BOTO_PATH, so boto reads this
// file only; CLOUDSDK_CORE_PASS_CREDENTIALS_TO_GSUTIL=false stops gcloud's
// gsutil wrapper from adding the gcloud account's credentials after it.
//
// The user's own configuration (FindUserConfig: $BOTO_CONFIG if the file
// exists, else the last existing $BOTO_PATH entry, else ~/.boto) is merged
// in so proxies, endpoints, parallelism and other settings keep working:
// every section, key and comment is kept, except what would replace the
// session's credentials or token endpoint (other refresh tokens,
// service-account keys, external accounts, HMAC keys, [GoogleCompute],
// the [OAuth2] provider and client settings) and gsutil's own
// software_update_check_period and state_dir. Unlike luci-go, which kept
// only [GSUtil] and [Boto] and lost a section that directly followed
// another, a section header is never swallowed.
package gsutil

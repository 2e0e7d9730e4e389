// Package refreshgrant serves the OAuth 2.0 refresh-token grant (RFC 6749
// §6) that token-endpoint shims answer: the client POSTs a form with
// grant_type=refresh_token and refresh_token=<the session's secret>, and
// gets back {"access_token", "expires_in", "token_type": "Bearer"} for a
// fixed account and scopes, minted by the token core with a minimum
// lifetime left. Failures are {"error", "error_description"} JSON with the
// RFC 6749 §5.2 codes: 400 for a bad form, grant type or secret (and for a
// token-core refusal), 405 for a method other than POST, 500 when the token
// core fails for a reason that may pass.
//
// The refresh token here is not a Google refresh token: it is a random
// secret a session hands its child, compared in constant time, so that only
// that child can get tokens from the loopback endpoint.
//
// Users: shims/gsutil (boto's provider_token_uri; oauth2client and
// gcs-oauth2-boto-plugin post url-encoded forms) and shims/firebase
// (FIREBASE_TOKEN_URL; firebase-tools posts multipart forms). Each shim
// keeps its own routes, Host and browser checks and wording of the
// wrong-secret message, and uses Grant for the exchange and Grant.WriteError
// as its one error writer.
package refreshgrant

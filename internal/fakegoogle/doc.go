// Package fakegoogle is an in-process stand-in for Google's OAuth 2.0 token
// endpoint, for tests that must never reach the internet.
//
// A Server listens on loopback (an httptest.Server) and speaks the part of
// the protocol that service-account credentials use: a POST to /token with
// the form fields
//
//	grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer
//	assertion=<RS256 JWT signed with the service account's private key>
//
// The assertion is verified the way Google does it: the signature must check
// out against a key registered with the Server (looked up by the JWT's kid
// header, or by its iss email when there is no kid), iss must be that key's
// email, aud the Server's token URL, and exp/iat must describe a token of at
// most one hour that is valid now. The claims then ask for one of:
//
//   - scope (space-separated): the answer is an opaque access token,
//     {"access_token":"fake-at-<n>-<random>","expires_in":<s>,"token_type":"Bearer"};
//   - target_audience: the answer is {"id_token":"<JWT>"}, an RS256 JWT
//     signed by the Server's own key with iss "https://accounts.google.com",
//     aud, azp, sub, email, email_verified, iat and exp. Its public key is
//     published at /oauth2/v3/certs and returned by JWKS, so tests can verify
//     what they were given.
//
// Refusals use Google's body shape, {"error":"invalid_grant",
// "error_description":"..."} with status 400.
//
// Keys are made with NewKey, which generates a fresh RSA key, registers it
// and returns the service-account key JSON (type, project_id,
// private_key_id, private_key as PKCS#8 PEM, client_email, client_id,
// auth_uri, token_uri pointing at this Server, ...). Key.WriteFile or
// Server.KeyFile put it on disk with mode 0600.
//
// Every successful mint is recorded (Mints) so a test can check that a token
// was minted for a given key and scopes; Requests counts every call,
// refused ones included, so retries can be counted. SetFault makes the
// endpoint misbehave: a fixed status (400 with an OAuth error, 429 with
// Retry-After, 500, ...), added latency, or a hang until the client gives
// up; SetTokenLifetime changes how long minted tokens live.
//
// Users' logins and impersonation are there too. AddClient registers an
// OAuth client; the authorization endpoint (AuthURL) plays a user (SetUser)
// who consents at once: it checks client_id, a loopback redirect_uri,
// response_type=code and a PKCE S256 challenge, then redirects back with
// a code, so an HTTP client following redirects can stand in for the
// browser. The token endpoint then also takes grant_type=authorization_code
// (client secret and code_verifier checked) and grant_type=refresh_token
// (with an optional narrower scope), answering with access_token, scope,
// refresh_token on the first exchange and an id_token whose aud is the
// client when openid or email was granted. RevokeURL revokes a refresh
// token; TokenInfoURL describes an access token. Under IAMURL the IAM
// Credentials methods :generateAccessToken and :generateIdToken accept a
// bearer token minted here with cloud-platform, for targets the caller was
// allowed with AllowImpersonation (delegates checked link by link). Mint
// records say which grant produced each token (Grant, ClientID, Actor).
//
// Typical use in a test:
//
//	fg := fakegoogle.New(t)                       // closed at cleanup
//	path := fg.KeyFile(t, "robot@proj.iam.gserviceaccount.com")
//	// ... point the code under test at path, ask it for a token ...
//	if m := fg.Mints(); len(m) != 1 || m[0].Scopes[0] != "scope-a" { t.Fatal(m) }
//
// Start gives the same Server without a testing.TB, for a TestMain or a
// helper binary that must close it itself.
package fakegoogle

// Package metadata uses a GCE metadata server as a credential: the real
// one on a Google Compute Engine VM (or GKE, Cloud Run, ...), or an
// emulator such as another credbroker's, found through GCE_METADATA_HOST.
//
// The Source speaks the metadata protocol as Google's client libraries
// do: GET http://HOST/computeMetadata/v1/instance/service-accounts/ACCOUNT/
// with the header "Metadata-Flavor: Google" and no proxy, reading
//
//   - email: the account's email (fetched once, when the Source is made);
//   - token?scopes=a,b: {"access_token","expires_in","token_type"};
//   - identity?audience=AUD&format=full: an ID token (a JWT; its expiry is
//     read from its exp claim);
//   - scopes: the account's scopes, one a line (for `credbroker info`).
//
// ACCOUNT is "default" unless another account's email or alias is named.
// The server decides which scopes a token carries: an emulator honours
// ?scopes=, a real VM gives the scopes its instance was created with.
//
// Errors: network failures, timeouts and 5xx are transient and retried a
// few times with backoff; 404 (no such account, or no ID tokens) and the
// other 4xx are fatal. Bodies are quoted only in short, cleaned form; no
// token is ever in an error.
package metadata

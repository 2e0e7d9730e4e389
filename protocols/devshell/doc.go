// Package devshell serves access tokens over the Cloud Shell credential
// protocol ("devshell"), the way a Cloud Shell VM hands its user's token to
// the tools running inside it.
//
// # Who uses it
//
// Clients find the server through the DEVSHELL_CLIENT_PORT environment
// variable and connect to localhost on that port, so the server listens on
// both 127.0.0.1 and [::1] with one port number. Known clients:
//
//   - oauth2client's DevshellCredentials (the copy vendored in gsutil is
//     what still runs; gsutil tries it last, after any .boto credentials);
//   - google-auth-library-java's CloudShellCredentials, which Java
//     Application Default Credentials try before the metadata server.
//
// gcloud only reads the variable to decide it runs "in Cloud Shell"; it
// takes its tokens from the metadata server.
//
// # Wire format
//
// Plain TCP, one request and one reply per connection; the server closes
// the connection after replying. Both directions carry one frame:
//
//	<decimal payload length>\n<payload>
//
// where the payload is a JSON array. The request is normally "2\n[]" (the
// Java client adds a trailing "\n", which is ignored, as is anything after
// the declared length). Any JSON array is accepted and its contents are
// ignored: there is only one thing to ask for.
//
// A successful reply is
//
//	[email, project_id, access_token, expires_in]
//
// for example 37\n["sa-x@example.com",null,"tok1",1799]. project_id is
// null unless configured; expires_in is the token's remaining lifetime in
// whole seconds, truncated, and never below 1 (some clients treat 0 as "no
// token"). A failure is a one-element array holding a message, e.g.
// 35\n["no newline in the first 6 bytes"].
//
// # Constraints from the clients
//
// The Python client reads 6 bytes, requires a newline among them and then
// reads the rest with MSG_WAITALL, comparing the declared length with the
// length of the decoded text. So a reply is sent in one write, its length
// prefix has at most 5 digits, and its payload is pure ASCII (non-ASCII
// characters are written as JSON \u escapes).
//
// # Differences from the luci-go server
//
// The request reader does not depend on how the bytes are split into TCP
// segments (the header and the body may arrive separately), rejects
// negative, non-numeric and over-long lengths with an error reply instead
// of panicking or staying silent, and every connection has a deadline.
// Tokens are served with at least MinLifetime left (five minutes, not ten
// seconds), so clients with a refresh margin do not re-ask on every call.
// Close ends every open connection. Token-core failures are reported as
// "cannot get access token: <short reason>"; the details go only to the
// log.
//
// The protocol carries no secret. A Server can be given an AllowPeer check
// (e.g. "the peer socket belongs to our uid") that runs before anything is
// read.
package devshell

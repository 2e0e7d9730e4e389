// Package gcemeta serves a fake Google Compute Engine metadata server on
// loopback, so that Google client libraries and tools in a child process
// (Go, Python google-auth and oauth2client, Node, Java, .NET, gcloud) find
// "the VM's service account" and get their tokens from credbroker.
//
// # Protocol
//
// Plain HTTP GETs under /computeMetadata/v1/, each with the request header
// "Metadata-Flavor: Google". The served tree:
//
//	/                                    listing "computeMetadata/" (no header needed)
//	/computeMetadata/v1/project/project-id           configured, or "none"
//	/computeMetadata/v1/project/numeric-project-id   digits, or "0"
//	/computeMetadata/v1/project/attributes/          empty
//	/computeMetadata/v1/instance/attributes/         empty
//	/computeMetadata/v1/instance/{id,name,hostname,zone}   only when configured
//	/computeMetadata/v1/instance/service-accounts/   default/ and <email>/ of every account
//	    <acct>/aliases, email, scopes                <acct> is "default" or an email
//	    <acct>/token[?scopes=a,b]                    {"access_token":..,"expires_in":N,"token_type":"Bearer"}
//	    <acct>/identity?audience=A[&format=..]       the ID token (a JWT), as text
//	/computeMetadata/v1/universe/universe-domain     googleapis.com (also universe_domain)
//
// Formats follow GCE: leaf values are text ("application/text"; one line
// has no trailing newline, several lines end with one; lists are one
// element per line), the token is JSON ("application/json", exactly, as
// oauth2client compares it); ?alt=json or ?alt=text switch a leaf. A path
// ending in "/" lists a directory: child names one per line, directories
// with "/". With ?recursive=true the whole directory comes as one JSON
// object (keys camelCased at "-", except account emails and attribute
// names, which are kept as GCE keeps them), or as "path value" lines with
// alt=text; token and identity are left out. Every value except token and
// identity carries an "Etag" header: the first 8 bytes of the body's
// SHA-256 in hex. A directory asked for without its slash is a 301 to the
// slash form, Location built from this server's own address (never the
// request's Host) with the query string kept.
//
// ?wait_for_change=true on a value waits for it to differ from last_etag:
// with a different last_etag the answer comes at once; with the current
// one, or none, the request is held until timeout_sec (bounded by
// Server.MaxWait, five minutes by default), the client leaving, or Close.
// Values are fixed for a server's life, so a wait ends with the unchanged
// value. Go's metadata.Subscribe therefore polls once per timeout instead
// of spinning.
//
// Every response, errors and redirects included, carries
// "Metadata-Flavor: Google", "Server: Metadata Server for VM",
// "X-Xss-Protection: 0" and "X-Frame-Options: SAMEORIGIN". Errors are a
// short text/plain message and a status:
//
//	403  Host header not one of this server's names (DNS rebinding), a
//	     browser's request (Origin, Referer, Sec-Fetch-*), a missing or
//	     wrong Metadata-Flavor (except on "/"), any X-Forwarded-For
//	405  a method other than GET and HEAD
//	400  alt on a plain listing, identity without audience, a bad timeout_sec
//	404  a path not in the tree, or one through or below a value
//	500  a transient token-core failure (clients retry)
//	403/404/400  a fatal one: refused credential / unknown account /
//	     request the credential cannot serve (clients give up)
//
// # Differences from LUCI's implementation
//
// The layout, messages and bytes follow luci-go's auth/integration/gcemeta
// wherever its behaviour is kept; the differences, each towards what GCE
// does or safer:
//   - the Server header says "Metadata Server for VM", as GCE does;
//   - a missing Metadata-Flavor and X-Forwarded-For are 403, as on GCE and
//     in Google's metadata proxy; LUCI answers 400;
//   - HEAD is allowed;
//   - the Host header is checked, browsers are refused, and redirects do
//     not reflect the Host header; the query string survives a redirect;
//   - account emails are not camelCased in recursive JSON;
//   - instance/attributes/, project/attributes/, instance/id,
//     instance/hostname, universe/ and accounts other than the default one
//     are served; no instance name is made up from the local hostname;
//   - wait_for_change is honoured instead of ignored;
//   - tokens have at least MinTokenLifetime (5 min) left, not 10 s;
//   - failures are 500 (retry) or 4xx (give up) instead of always 503.
//
// LUCI answers 404 to every ID token request for gcloud's own client id
// (gcloud fetches one on each refresh and ignores only a 404), to spare
// its token server. Here the broker's cache makes that request cheap, so
// it is served like any audience (gcloud auth print-identity-token works);
// only when minting fails is it answered 404, so that gcloud, which treats
// any other error as a failed refresh, goes on with its access token.
//
// The audience is read leniently: Node's gcp-metadata appends it without
// escaping, so it may hold "://", "+" and even "&": everything up to the
// next known parameter belongs to it.
//
// # Security
//
// The protocol carries no secret, so the server binds loopback only (via
// internal/loopback, with timeouts and a connection cap), insists on its
// Host names (127.0.0.1:PORT, localhost:PORT, [::1]:PORT,
// metadata.google.internal[:PORT], metadata, 169.254.169.254[:PORT]),
// refuses browsers, proxies and requests without the flavor header, and
// Close ends every connection, so no token flows after a session ends.
//
// # Use
//
//	srv := &gcemeta.Server{Tokens: b, ProjectID: "my-proj", NumericProjectID: "123",
//		Accounts: []gcemeta.Account{{ID: "ci", Email: "ci@my-proj.iam.gserviceaccount.com",
//			Scopes: []string{"https://www.googleapis.com/auth/cloud-platform"}}}}
//	info, err := srv.Start(ctx)
//	...
//	cmd.Env = append(cmd.Env, info.Env()...)
//	defer srv.Close()
package gcemeta

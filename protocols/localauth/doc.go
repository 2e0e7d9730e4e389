// Package localauth serves LUCI's local_auth protocol: a loopback HTTP
// server that hands OAuth access tokens and ID tokens to LUCI-aware child
// processes (luci-go's auth library, depot_tools, recipes, luci-auth).
//
// # Discovery
//
// Children find the server through the local_auth section of their
// LUCI_CONTEXT file (see package lucictx): the port on 127.0.0.1, a shared
// secret, the accounts served and the default account. Start returns an
// Info from which that section is built.
//
// # Wire protocol
//
// Each call is "POST /rpc/LuciLocalAuthService.<Method>" with a JSON body;
// the answer is a JSON object followed by a newline, sent with
// "Content-Type: application/json; charset=utf-8" and a Content-Length.
//
//	GetOAuthToken  {"scopes":[...],"secret":"<base64>","account_id":"<id>"}
//	               -> {"access_token":"...","expiry":<unix seconds>}
//	GetIDToken     {"audience":"...","secret":"<base64>","account_id":"<id>"}
//	               -> {"id_token":"...","expiry":<unix seconds>}
//
// JSON keys match without regard to case, unknown keys are ignored, and
// the secret is standard base64 of the secret bytes. Scopes are sorted and
// de-duplicated before the token core sees them. Every token served has at
// least MinTokenLifetime (3 minutes) left, the margin older clients rely on.
//
// Requests are checked in a fixed order, and each failure has the status
// and plain-text body (Go's http.Error format) that LUCI's own server
// gives, since clients and their tests match on them:
//
//	405 Expecting POST                                     not a POST
//	404 Expecting /rpc/LuciLocalAuthService.<method>       raw request URI does not match (a query string counts)
//	400 Can't parse Content-Type: <error>                  Content-Type present but malformed
//	400 Expecting 'application/json' Content-Type          Content-Type present and not JSON
//	400 Expecting 'Content-Length' header, <64Kb           no Content-Length (chunked), or 65536 bytes or more
//	502 Can't read the request body                        body shorter than announced
//	404 Unknown RPC method "<name>"                        checked before the body is parsed
//	400 Not JSON body - <error>                            not JSON, or the secret is not base64
//	400 Bad request: field "<f>" is required.              scopes/audience, then secret, then account_id
//	403 Invalid secret.                                    compared in constant time
//	404 Unrecognized account ID "<id>".
//	500 Transient error - <error>                          the token core says retrying may help
//	200 {"error_code":N,"error_message":"..."}             any other token-core failure
//	500 Internal Server Error. See logs.                   a panic while serving
//
// Missing fields are checked before the secret, so a wrong secret with no
// account_id gets 400, and the secret before the account, so a wrong
// secret with an unknown account gets 403.
//
// # Differences from LUCI's server
//
// The error code of a fatal failure is found with errors.As, so a coded
// error (broker.NewFatalCode) keeps its code when something wraps it; LUCI
// looks only at the outermost error and sends -1 for a wrapped one.
//
// Before the checks above, two more guard against web pages: the Host
// header must name the server (127.0.0.1:PORT or localhost:PORT; [::1]:PORT
// is accepted too), so a DNS-rebound page cannot reach it, and requests
// carrying browser-only headers (Origin, Referer, Sec-Fetch-*) are refused.
// Both answer 403 with a short plain-text body. No real client sends either.
//
// The server has read, write and idle timeouts and a connection cap, and
// Close ends every open connection, idle keep-alive ones included, so no
// token is served after a session ends (LUCI's server keeps answering on
// open keep-alive connections after Stop).
//
// Client is the other side of the protocol, for credbroker's own use of an
// upstream LUCI_CONTEXT.
package localauth

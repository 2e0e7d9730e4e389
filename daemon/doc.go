// Package daemon is the long-lived broker: it hosts many sessions, each a
// set of front-ends with a Boundary-style token record, and an admin API
// that people and jobs use to create, list, show and revoke them.
//
// The admin API is HTTP on a unix socket (0600, in a 0700 runtime
// directory) and serves only the daemon's own uid, checked with
// SO_PEERCRED on every connection. Routes:
//
//	POST   /v1/sessions        create a session; the answer holds its token, once
//	GET    /v1/sessions        list (?status=issued&owner=UID&limit=N)
//	GET    /v1/sessions/{id}   show one, never its token
//	DELETE /v1/sessions/{id}   revoke: front-ends closed at once, files removed
//	GET    /v1/status          counters and sessions for `credbroker status`
//	GET    /metrics            Prometheus text format
//
// A request may carry "Authorization: Bearer <session credential>"; it is
// then limited to that session, and counts as a use of it.
//
// Sessions are kept in a store (SQLite by default). When the daemon stops
// on SIGTERM it closes the front-ends but keeps the sessions' files and
// records; when it starts again it reopens each issued session's
// front-ends on the same ports with the same secret, so children started
// before the restart keep working. A session that cannot come back is
// marked failed with the reason.
//
// Metadata and devshell carry no secret: their connections are served
// only when the peer's uid (found from its socket) is the session owner's.
// Every token issued through a session is written to the audit log (JSON
// lines, 0600): session, front-end, account, scopes or audience, the
// peer's uid (looked up from its socket; the kernel keeps no pid for a TCP
// socket), latency and outcome, never a token.
package daemon

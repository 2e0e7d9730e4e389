// Package git lets git fetch from Google source hosts with the session's
// identity, through git's own credential-helper protocol, without wrapper
// scripts and without touching the user's git configuration.
//
// # Credential-helper protocol
//
// git runs a helper as "<command> get|store|erase" through the shell,
// writes a description of the credential it wants on the helper's stdin
// (lines "key=value", ended by a blank line or end of input; protocol,
// host with an optional ":port", path, username, ...) and, for "get",
// reads the same form back. Helper answers:
//
//	get    for https and a host matching one of Helper.Hosts:
//	         username=<the request's, or the account email, or "credbroker">
//	         password=<a fresh OAuth access token>
//	         password_expiry_utc=<unix seconds>   (git 2.41+; older gits ignore it)
//	       for any other request: nothing, exit 0, so git asks its next helper
//	store  nothing: the token is not kept anywhere
//	erase  nothing: a refused token is never cached here
//
// Host patterns are matched without regard to case with path.Match; a
// pattern without a port matches hosts without one ("*.googlesource.com"
// matches "chromium.googlesource.com" but not "x.googlesource.com:8443").
//
// # Configuration
//
// Config.Entries is the configuration a session hands git through the
// environment (GIT_CONFIG_COUNT, GIT_CONFIG_KEY_<n>, GIT_CONFIG_VALUE_<n>,
// read by git 2.31 and newer after every file, so they win): for each
// host pattern H
//
//	credential.https://H.helper =               (empty: forget the user's helpers for H,
//	                                             so a token is never stored by them)
//	credential.https://H.helper = !'<exe>' git-credential --host 'H'
//
// and for each Gerrit host G, which answers anonymous requests on "/" and
// needs "/a/" for authenticated ones,
//
//	url.https://G/a/.insteadOf = https://G/a/   (keeps "/a/" URLs as they are)
//	url.https://G/a/.insteadOf = https://G/
//
// Other hosts keep the user's own helpers. AppendEnv appends these entries
// after any the parent environment already carries.
package git

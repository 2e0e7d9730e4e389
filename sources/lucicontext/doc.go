// Package lucicontext uses an upstream LUCI_CONTEXT as a credential: when
// credbroker itself runs inside a LUCI context (under `luci-auth context`,
// on a Swarming bot, or under another credbroker), the local_auth server
// named by the context's "local_auth" section mints its tokens.
//
// The Source is the local_auth client of protocols/localauth: it POSTs
// GetOAuthToken and GetIDToken with the section's secret for one account,
// the section's default_account_id unless another is named, and maps the
// answers as LUCI's own client does (network errors and 5xx transient,
// other statuses and RPC error codes fatal, the code kept). Any scopes and
// audience can be asked for; the upstream decides. The protocol carries
// no lifetime: the upstream guarantees at least three minutes.
//
// A context without local_auth, or whose local_auth has no default
// account (the way LUCI says "do not use ambient credentials"), is not a
// source: FromEnv then returns ErrNoContext, so auto-selection moves on.
package lucicontext

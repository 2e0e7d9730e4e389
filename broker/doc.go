// Package broker is credbroker's token core: the one place that holds
// credentials and hands out tokens for them.
//
// A Broker serves named accounts. Each account is backed by a Source (a
// service-account key, the offline dev identity, an upstream LUCI_CONTEXT,
// ...) that knows how to mint access tokens and ID tokens. Front-ends never
// talk to sources: they ask the broker for a token for (account, scopes) or
// (account, audience) together with the minimum lifetime their clients need,
// and write whatever comes back in their own protocol.
//
// The broker adds, on top of every source:
//
//   - a bounded LRU cache keyed by account and the sorted, de-duplicated
//     scopes (or the audience for ID tokens);
//   - single flight: concurrent misses for one key cause exactly one upstream
//     call, and a slow mint for one key never blocks hits or other keys;
//   - the minimum-lifetime rule: a token is served only with at least the
//     caller's minimum left, and never once expired;
//   - refresh ahead: a key in use is re-minted in the background before its
//     token gets short, so hot keys never wait on the upstream;
//   - short-lived upstreams: when a source's tokens live shorter than a
//     caller's minimum (30-second tokens under local_auth's 3-minute rule),
//     the freshest token is served and refreshed ahead, instead of minting
//     once per request;
//   - one error type whose class (transient, fatal, fatal with a code) every
//     front-end maps to its protocol the same way.
//
// Tokens never appear in the broker's logs or errors.
package broker

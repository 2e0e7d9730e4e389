// Package openidtest has test helpers shared by the openid server's tests
// and those of its stores: a conformance suite every Store passes, a
// browser-like HTTP client that signs in, and a self-signed certificate
// for serving it over HTTPS.
package openidtest

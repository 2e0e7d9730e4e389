// Package openidtest has test helpers shared by the openid server's tests
// and those of its stores: a conformance suite every Store passes, and a
// browser-like HTTP client that signs in.
package openidtest

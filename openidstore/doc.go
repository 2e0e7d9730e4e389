// Package openidstore keeps the browser sessions of the openid front-end
// in SQL: SQLite (a file, the default for one broker) or PostgreSQL (so
// that several brokers behind a load balancer serve the same signed-in
// browsers). Both implement openid.Store with the same queries; the
// schema is created and upgraded by numbered migrations when a store is
// opened, under a lock so brokers starting together do not race.
//
// Rows hold no secret in the clear: the key is a hash of the cookie's
// random reference and the refresh token is sealed by the server before it
// gets here. Expired rows are removed by the server's periodic cleanup
// (openid.Store.DeleteExpired).
package openidstore

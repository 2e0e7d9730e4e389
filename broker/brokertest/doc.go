// Package brokertest has a broker.Source for tests of front-ends that run
// on a real broker.Broker: it mints numbered access tokens that live an
// hour, so a test can tell a cache hit from a new mint by the number.
package brokertest

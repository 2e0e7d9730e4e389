// Package fakegcs is a tiny Cloud Storage JSON API for tests: enough of
// buckets.get and objects.list for "gsutil ls gs://bucket", served on
// loopback, recording the bearer token of every request so a test can
// check which token a client presented.
package fakegcs

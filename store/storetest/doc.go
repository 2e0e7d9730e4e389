// Package storetest checks that an implementation of store.Store behaves
// as the broker expects, so every backend (SQLite now, a server database
// later) passes the same tests.
package storetest

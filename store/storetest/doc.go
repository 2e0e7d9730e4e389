// Package storetest checks that an implementation of store.Store behaves
// as the broker expects, so every backend (SQLite and PostgreSQL) passes
// the same tests.
package storetest

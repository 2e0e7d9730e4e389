// Package store persists the broker daemon's session records so that a
// restarted daemon can bring its sessions back.
//
// Store is the interface the rest of the broker uses; SQLite (a single
// file, pure Go through modernc.org/sqlite, in WAL mode) implements it
// for one host, and a server database can implement it later for several
// replicas. A Record holds no secret in clear: the session token is kept
// only as a keyed hash (for lookup) and an AEAD ciphertext (so the daemon
// can give a restored session its secret back); making and checking those
// is the authtoken package's job, not this one's.
//
// The schema is versioned: migrations are numbered SQL steps applied in
// order inside one transaction each, and the version reached is recorded
// in the schema_migrations table.
package store

// Package lucictx reads, changes and writes LUCI_CONTEXT files.
//
// LUCI_CONTEXT is an environment variable holding the absolute path of a
// JSON file. The file's top level is an object whose keys name sections
// ("local_auth", "realm", "resultdb", "deadline", ...) and whose values are
// JSON objects. A process that changes the context for its children writes
// a new file and points the children's LUCI_CONTEXT at it.
//
// This package keeps every section as the exact bytes it was read as, so
// sections it does not know are passed on unchanged (only insignificant
// whitespace is dropped when a file is written). A section whose value is
// not an object is dropped with a warning that is returned to the caller;
// a file that is not a JSON object is an error naming the file. Nothing in
// here panics on bad input and nothing is printed.
//
// The one section with a typed form is local_auth (see LocalAuth): the port
// and shared secret of a loopback token server and the accounts it serves.
// Its secret is written as padded standard base64, the only form the LUCI
// Go readers accept, and read in any common base64 form.
//
// A Context is immutable: every change returns a new Context, so one parsed
// parent can be shared by many children without locks.
package lucictx

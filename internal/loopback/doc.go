// Package loopback is the one place in credbroker that opens listeners.
//
// Every front-end serves on the loopback interface only, and goes through
// this package to get there, so the security baseline is written once:
//
//   - bind 127.0.0.1 (and ::1 on the same port where clients dial
//     "localhost"), never a wildcard address;
//   - header, read, write and idle timeouts on HTTP servers, a header size
//     limit, and a cap on open connections;
//   - Close stops the listeners and every open connection, idle keep-alive
//     ones included, so no token flows after a session ends;
//   - helpers for the Host-header allow-list (against DNS rebinding), for
//     refusing requests a browser made, and for finding the local uid that
//     owns a peer's socket.
package loopback

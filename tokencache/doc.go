// Package tokencache keeps credentials that must outlive one process (the
// refresh token of a user's login) and the access tokens minted from them,
// encrypted on disk and shared safely by every broker of the same user.
//
// A Cache lives in one directory (DefaultDir: credbroker/ under the user's
// XDG config directory, made 0700) with three files:
//
//   - cache.key: 32 random bytes, the AES-256 key, created once with
//     O_EXCL and mode 0600. Whoever can read it can read the cache, exactly
//     like the user's own home directory; it keeps the tokens out of
//     backups, grep and editors that do not also take the key.
//   - tokens.enc: "credbroker-tokencache-v1\n", a 12-byte random nonce and
//     the AES-GCM sealing of a JSON object {"entries":{KEY:Entry}} with the
//     header as additional data. It is replaced atomically (a temporary file
//     in the same directory, fsync, rename), so readers see the old or the
//     new content, never half of one.
//   - tokens.lock: an advisory lock (flock) taken around every read-modify-
//     write, so brokers started at the same moment do not lose each other's
//     updates. Update holds it across the caller's refresh, which is how
//     two processes that both find a token expiring end up making one mint:
//     the second sees the first's fresh token when it gets the lock.
//
// A file that cannot be decrypted (another key, a truncated or edited file,
// an older format) is treated as empty with one warning and is replaced at
// the next write; it never stops the broker. Memory gives a Cache with the
// same behaviour that keeps nothing on disk (credbroker's --cache=memory).
//
// Keys are strings chosen by the sources, e.g. "user/<client id>". No
// error or log line carries an entry's secrets.
package tokencache

// Package session launches one credential context: the front-ends a
// program needs, the files they point at, and the environment that makes
// every tool in the program's process tree find them.
//
// A session owns a private 0700 directory (named credbroker-<pid>-..., so
// that directories left by a broker that was killed can be found and
// removed at the next start). In it go the LUCI_CONTEXT file, gcloud's
// fresh configuration directory and gsutil's .boto. Start starts the
// front-ends on loopback; Close stops them, ends their open connections
// and removes the directory, so no token flows after a session ends.
//
// The child environment is the parent's with:
//
//   - LUCI_CONTEXT replaced by a file whose local_auth section names the
//     session's server; every other section of a parent LUCI_CONTEXT kept;
//   - GCE_METADATA_HOST, GCE_METADATA_IP, GCE_METADATA_ROOT and
//     METADATA_SERVER_DETECTION pointing at the metadata server, and a
//     fresh CLOUDSDK_CONFIG so gcloud has no stale "on GCE?" answer;
//   - DEVSHELL_CLIENT_PORT for the devshell server;
//   - BOTO_CONFIG naming the session's .boto, BOTO_PATH removed;
//   - FIREBASE_TOKEN (a random secret) and FIREBASE_TOKEN_URL for the
//     firebase-tools token endpoint;
//   - GIT_CONFIG_COUNT and GIT_CONFIG_KEY_<n>/GIT_CONFIG_VALUE_<n> entries
//     appended after the parent's, which make git ask "credbroker
//     git-credential" for Google source hosts, and GIT_TERMINAL_PROMPT=0;
//   - DOCKER_CONFIG naming a private copy of the user's docker settings
//     whose credHelpers send Google's registries to
//     docker-credential-credbroker, and PATH starting with the private bin
//     directory that holds it;
//   - variables that would make clients prefer another credential removed:
//     GOOGLE_APPLICATION_CREDENTIALS, CLOUDSDK_AUTH_ACCESS_TOKEN_FILE,
//     CLOUDSDK_CORE_ACCOUNT, NO_GCE_CHECK (and DEVSHELL_CLIENT_PORT when
//     the devshell server is off).
//
// git's and docker's helpers are the credbroker binary run by git or
// docker in the child's tree; they get tokens from local_auth through the
// LUCI_CONTEXT they inherit, so both need local_auth.
//
// An anonymous session (Config.Anonymous) starts no front-end: the child
// gets the cleaned environment, BOTO_CONFIG set and empty (gsutil reads
// no .boto), a fresh CLOUDSDK_CONFIG, no local_auth in its LUCI_CONTEXT
// and no pointers to a parent session's servers; git and docker keep the
// user's own configuration.
package session

// Command credbroker holds one Google credential and serves short-lived
// tokens of it to the programs it runs, or to the sessions of a long-lived
// daemon, through every local protocol Google and LUCI tools speak: LUCI
// local_auth, a GCE metadata server, the Cloud Shell devshell protocol, a
// gsutil .boto and token endpoint, git and docker credential helpers, a
// firebase-tools token endpoint and a browser sign-in endpoint. All of
// them share one token core and listen on loopback only, but for the
// browser front-end of serve --web, which may face a network over HTTPS.
//
// One file per command or concern: run.go (run, alias context; the child
// process in child.go), token.go, info.go, demo.go, login.go, serve.go,
// session_cmd.go, status.go, web.go (its flags and setup shared with
// serve --web in webconfig.go; serve's side in serve_web.go), bench.go,
// tools.go (git-credential and the docker-credential-credbroker helper,
// which is this binary run under that name); credential selection in
// source.go, credflags.go and accounts.go. Actions parse flags, wire
// packages together and print; the protocols live in their own packages.
// See the README for every command with examples.
package main

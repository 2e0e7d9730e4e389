// Package docker lets the docker CLI pull from and push to Google's
// registries (Container Registry, Artifact Registry) with the session's
// identity, through docker's credential-helper protocol.
//
// # Credential-helper protocol
//
// For a registry listed under "credHelpers" in $DOCKER_CONFIG/config.json
// with the value "credbroker", docker runs "docker-credential-credbroker"
// from PATH with one argument, the operation, and talks to it on stdin and
// stdout:
//
//	get      stdin: the server URL ("gcr.io", "https://us.gcr.io", ...)
//	         stdout: {"ServerURL":"<as given>","Username":"oauth2accesstoken","Secret":"<access token>"}
//	list     stdout: {"https://<registry>":"oauth2accesstoken",...} for every registry served
//	store    stdin: credentials from "docker login"; refused
//	erase    stdin: a server URL from "docker logout"; refused
//	version  stdout: a version line
//
// A failure is one line on stdout and exit status 1, as docker expects;
// a registry that is not served answers "credentials not found in native
// keychain", the message docker treats as "no credentials".
//
// Registries are served only if the config.json that DOCKER_CONFIG names
// maps them to this helper; that file is the one list both docker and
// the helper read.
//
// # Configuration
//
// Prepare makes the session's DOCKER_CONFIG directory: a config.json that
// is the user's own (from DOCKER_CONFIG or ~/.docker) with credHelpers
// entries added for the registries, every other setting kept; links to
// the user's contexts and cli-plugins directories so docker contexts and
// plugins keep working; and a bin directory holding the helper, a link to
// the credbroker binary, to put first on PATH. The user's files are only
// read.
package docker

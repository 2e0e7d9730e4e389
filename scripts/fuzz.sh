#!/usr/bin/env bash
# Runs every fuzz target of the project for a given time each, one after
# the other, and stops at the first failure (the failing input is then in
# the package's testdata/fuzz/<Target>/ directory; commit it as a seed
# once fixed).
#
#   scripts/fuzz.sh            # 60s per target
#   scripts/fuzz.sh 5m         # the run recorded in docs/robustness.md
#   scripts/fuzz.sh 30s FuzzRequest FuzzParse   # only these targets
#
# CI does not run this script: `go test ./...` runs every target on its
# seed corpus only (f.Add seeds and testdata/fuzz), which is quick.
set -euo pipefail
cd "$(dirname "$0")/.."

time="${1:-60s}"
shift || true

# package  target  -- one line per parser.
targets=(
  "./lucictx                 FuzzParse"              # LUCI_CONTEXT files and the local_auth section
  "./protocols/localauth     FuzzDecodeRequest"      # local_auth request bodies
  "./protocols/localauth     FuzzDecodeSimple"       # the fast decoder of plain bodies, against encoding/json
  "./protocols/gcemeta       FuzzRequest"            # metadata paths and query strings
  "./protocols/devshell      FuzzReadRequest"        # devshell request framing
  "./protocols/devshell      FuzzEncodeFrame"        # devshell reply framing
  "./protocols/devshell      FuzzEncodeReply"        # the direct token reply, against the general encoder
  "./shims/gsutil            FuzzParseINI"           # the user's .boto merged into the session's
  "./sources/serviceaccount  FuzzParseKey"           # service-account key files
  "./sources/serviceaccount  FuzzEndpointError"      # token endpoint error answers
  "./internal/loopback       FuzzParseProcNetLine"   # /proc/net/tcp lines for the peer-uid check
  "./internal/loopback       FuzzHostAllowed"        # Host headers against DNS rebinding
  "./internal/fakegoogle     FuzzTokenEndpoint"      # the test upstream itself
  "./authtoken               FuzzParseCredential"    # daemon session tokens (at_<id>_<secret>)
  "./protocols/openid        FuzzOpen"               # sealed browser-session cookies
  "./protocols/openid        FuzzReturnPath"         # the r= redirect target (no open redirects)
  "./dashboard               FuzzRevoke"             # dashboard revoke forms (CSRF, same origin)
  "./shims/git               FuzzReadRequest"        # git credential-helper requests
  "./shims/docker            FuzzServeGet"           # docker credential-helper requests
  "./shims/docker            FuzzMergeConfig"        # the user's docker config.json merge
  "./shims/firebase          FuzzTokenRequest"       # firebase-tools token requests
  "./internal/refreshgrant   FuzzServeToken"         # refresh-token grants of the gsutil and firebase endpoints
  "./sources/userlogin       FuzzPasted"             # pasted login redirects and codes
  "./tokencache              FuzzDecrypt"            # the sealed on-disk token cache
  "./internal/jwtclaims      FuzzExpiry"             # exp and email claims of upstream ID tokens
)

failed=0
for line in "${targets[@]}"; do
  read -r pkg target <<<"$line"
  if [ "$#" -gt 0 ] && [[ " $* " != *" $target "* ]]; then
    continue
  fi
  echo "=== $target ($pkg) for $time"
  if ! go test -run='^$' -fuzz="^${target}\$" -fuzztime="$time" "$pkg"; then
    echo "FAIL: $target in $pkg" >&2
    failed=1
    break
  fi
done
exit "$failed"

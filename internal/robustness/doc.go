// Package robustness holds the tests that put every front-end of a real
// session under the same faults and the same abuse, so that a rule such as
// "a transient upstream failure is reported as retryable" or "a rebinding
// Host header is refused" is checked on local_auth, the metadata server,
// devshell and the gsutil token endpoint alike.
//
// The tests start a session in-process (session.Start, the code path of
// `credbroker run`) over a broker whose service-account source talks to the
// fake Google token endpoint through a dialer that can reset connections.
// Faults are injected upstream (errors, 429 with Retry-After, hangs, slow
// answers, resets, short-lived tokens, a skewed clock); abuse comes from
// the client side (slowloris, idle-connection floods, oversized bodies and
// headers, rebinding Host headers, browser origins, many distinct scope
// sets, requests after the session ended). Every loop is bounded in time
// and count and everything stays on loopback.
//
// docs/robustness.md lists what each test shows and records a run.
package robustness

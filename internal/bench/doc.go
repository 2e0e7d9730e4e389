// Package bench is the machinery of `credbroker bench` and of the
// cross-front-end robustness tests: it finds a session's front-ends the
// way clients do (Endpoints, from the child's environment), sends each
// front-end's token request and decodes the answer into one vocabulary
// (Target, Answer, Outcome), generates load on keep-alive connections and
// records latencies (Run), and runs the baseline servers the results are
// compared with: a bare net/http server and a raw TCP server answering
// bytes of the same size.
//
// Numbers are only meaningful as ratios against a baseline measured in
// the same run on the same machine; see docs/performance.md.
package bench

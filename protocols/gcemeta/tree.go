package gcemeta

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// node is one entry of the metadata tree: a directory (children non-nil),
// a fast leaf with a fixed value, or an expensive leaf (mint non-nil) that
// is computed per request, has no ETag and is left out of recursive
// listings.
type node struct {
	children map[string]*node
	verbatim bool // recursive JSON keeps child names as they are

	value any // string, json.Number, []string or map[string]any
	mint  func(r *http.Request, q request) (any, error)
}

func dir(children map[string]*node) *node { return &node{children: children} }

func leaf(v any) *node { return &node{value: v} }

func (n *node) isDir() bool { return n.children != nil }

func (n *node) sortedChildren() []string {
	names := make([]string, 0, len(n.children))
	for name := range n.children {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// buildTree lays out the served tree. Values are fixed for the server's
// life; only token and identity are computed per request.
//
// Which client reads what:
//   - / : Go's and Python's on-GCE probes, the boto plugin (no header).
//   - instance (301 to instance/) : Node gcp-metadata's detection.
//   - project/project-id, project/numeric-project-id : every SDK's project
//     lookup; gcloud's on-GCE test wants the number to be all digits.
//   - project/attributes/, instance/attributes/ : read opportunistically
//     (Go's ProjectAttributes, gcloud); empty, as on a bare VM.
//   - instance/{id,name,hostname,zone} : logging agents, gcloud's region
//     guess; served only when configured, never invented.
//   - instance/service-accounts/ : gcloud lists accounts from it (and then
//     uses the email path); Node reads it recursively.
//   - service-accounts/<acct>/?recursive=true : google-auth and
//     oauth2client before every refresh (email and scopes).
//   - <acct>/{aliases,email,scopes} : Go's Email and Scopes.
//   - <acct>/token : every SDK's access token.
//   - <acct>/identity : ID tokens (idtoken, google-auth, gcloud, Node).
//   - universe/universe-domain : google-auth, gcloud, cloud.google.com/go/auth;
//     universe/universe_domain : x/oauth2.
func (s *Server) buildTree() *node {
	instance := map[string]*node{
		"attributes":       {children: map[string]*node{}, verbatim: true},
		"service-accounts": s.accountsDir(),
	}
	if s.InstanceID != "" {
		instance["id"] = leaf(json.Number(s.InstanceID))
	}
	if s.InstanceName != "" {
		instance["name"] = leaf(s.InstanceName)
	}
	if s.Hostname != "" {
		instance["hostname"] = leaf(s.Hostname)
	}
	if s.Zone != "" {
		instance["zone"] = leaf(s.Zone)
	}
	project := map[string]*node{
		"attributes":         {children: map[string]*node{}, verbatim: true},
		"numeric-project-id": leaf(json.Number(s.numericProjectID())),
		"project-id":         leaf(s.projectID()),
	}
	universe := map[string]*node{
		"universe-domain": leaf(universeDomain),
		"universe_domain": leaf(universeDomain),
	}
	v1 := dir(map[string]*node{
		"instance": dir(instance),
		"project":  dir(project),
		"universe": dir(universe),
	})
	return dir(map[string]*node{
		"computeMetadata": dir(map[string]*node{"v1": v1}),
	})
}

// universeDomain is the only universe credbroker serves.
const universeDomain = "googleapis.com"

// accountsDir mounts the default account as "default/" and under its
// email, and every other account under its email.
func (s *Server) accountsDir() *node {
	d := &node{children: map[string]*node{}, verbatim: true}
	for _, a := range s.Accounts {
		isDefault := a.ID == s.defaultID
		d.children[a.Email] = s.accountDir(a, isDefault)
		if isDefault {
			d.children["default"] = s.accountDir(a, true)
		}
	}
	return d
}

func (s *Server) accountDir(a Account, isDefault bool) *node {
	aliases := []string{}
	if isDefault {
		aliases = []string{"default"}
	}
	scopes := slices.Clone(a.Scopes)
	if scopes == nil {
		scopes = []string{}
	}
	return dir(map[string]*node{
		"aliases": leaf(aliases),
		"email":   leaf(a.Email),
		"scopes":  leaf(scopes),
		"token": {mint: func(r *http.Request, q request) (any, error) {
			return s.accessToken(r, a, q)
		}},
		"identity": {mint: func(r *http.Request, q request) (any, error) {
			return s.idToken(r, a, q)
		}},
	})
}

// walkResult is where a request's path leads.
type walkResult struct {
	node *node
	segs []string // the path's segments; see path
}

// path is "/computeMetadata/v1/instance", "" for the root. It is built
// only when asked for (redirects, errors): a token request never needs
// it.
func (w walkResult) path() string { return segPath(w.segs) }

func segPath(segs []string) string {
	if len(segs) == 0 {
		return ""
	}
	return "/" + strings.Join(segs, "/")
}

// walk follows q's segments from root, answering GCE's 404s for missing
// children and for paths that go through or list a leaf.
func walk(root *node, q request) (walkResult, error) {
	cur := root
	for i, seg := range q.segments {
		if !cur.isDir() {
			return walkResult{}, notFound(fmt.Sprintf("Metadata %q can't be listed", segPath(q.segments[:i])))
		}
		next, ok := cur.children[seg]
		if !ok {
			return walkResult{}, notFound(fmt.Sprintf("Metadata directory %q doesn't have %q", segPath(q.segments[:i]), seg))
		}
		cur = next
	}
	if q.listing && !cur.isDir() {
		return walkResult{}, notFound(fmt.Sprintf("Metadata %q can't be listed", segPath(q.segments)))
	}
	return walkResult{node: cur, segs: q.segments}, nil
}

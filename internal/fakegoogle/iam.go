package fakegoogle

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
)

// IAMPrefix is the path under which the IAM Credentials API methods
// live: IAMPrefix + <email> + ":generateAccessToken" or
// ":generateIdToken".
const IAMPrefix = "/v1/projects/-/serviceAccounts/"

// cloudPlatform is the scope a caller's token needs for the IAM API.
const cloudPlatform = "https://www.googleapis.com/auth/cloud-platform"

// IAMURL is the base URL of the fake IAM Credentials API (what Google
// serves at https://iamcredentials.googleapis.com).
func (s *Server) IAMURL() string { return s.URL }

// AllowImpersonation lets caller (a service account or a user) mint
// tokens of target, as the Service Account Token Creator role does.
func (s *Server) AllowImpersonation(caller, target string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.user.actAs[[2]string{caller, target}] = true
}

// SetIAMFault makes the IAM endpoints misbehave (Status, Times; Latency
// and Hang are not used there).
func (s *Server) SetIAMFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.user.iamFail, s.user.iamLeft = f, f.Times
}

// apiError is an error in the shape Google APIs use.
func apiError(w http.ResponseWriter, code int, status, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(code)
	body, _ := json.Marshal(map[string]any{"error": map[string]any{"code": code, "message": msg, "status": status}})
	w.Write(body)
}

func (s *Server) serveIAM(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	f := s.user.iamFail
	if f.Times > 0 {
		if s.user.iamLeft--; s.user.iamLeft <= 0 {
			s.user.iamFail = Fault{}
		}
	}
	s.mu.Unlock()
	if f.Status != 0 {
		apiError(w, f.Status, "UNAVAILABLE", "fault injected")
		return
	}
	rest, _ := url.PathUnescape(strings.TrimPrefix(r.URL.EscapedPath(), IAMPrefix))
	target, method, ok := strings.Cut(rest, ":")
	if !ok || (method != "generateAccessToken" && method != "generateIdToken") {
		apiError(w, http.StatusNotFound, "NOT_FOUND", "Method not found.")
		return
	}
	bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	caller, live := s.lookupToken(bearer)
	if !ok || !live {
		apiError(w, http.StatusUnauthorized, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
		return
	}
	if !slices.Contains(caller.Scopes, cloudPlatform) {
		apiError(w, http.StatusForbidden, "PERMISSION_DENIED", "Request had insufficient authentication scopes.")
		return
	}
	var req struct {
		Scope        []string `json:"scope"`
		Delegates    []string `json:"delegates"`
		Lifetime     string   `json:"lifetime"`
		Audience     string   `json:"audience"`
		IncludeEmail bool     `json:"includeEmail"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&req); err != nil {
		apiError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "Invalid JSON payload received.")
		return
	}
	// The chain caller -> delegates... -> target must be allowed link by link.
	chain := []string{caller.Email}
	for _, d := range req.Delegates {
		chain = append(chain, strings.TrimPrefix(d, "projects/-/serviceAccounts/"))
	}
	chain = append(chain, target)
	s.mu.Lock()
	for i := 0; i+1 < len(chain); i++ {
		if !s.user.actAs[[2]string{chain[i], chain[i+1]}] {
			s.mu.Unlock()
			apiError(w, http.StatusForbidden, "PERMISSION_DENIED",
				"Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist).")
			return
		}
	}
	lifetime := s.lifetime
	s.mu.Unlock()
	if d, err := time.ParseDuration(req.Lifetime); err == nil && d > 0 {
		lifetime = d
	}
	now := time.Now().Truncate(time.Second)
	exp := now.Add(lifetime.Truncate(time.Second))
	m := Mint{Email: target, Grant: "impersonation", Actor: caller.Email, Expiry: exp}
	var body []byte
	if method == "generateAccessToken" {
		if len(req.Scope) == 0 {
			apiError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "Scope required.")
			return
		}
		m.Scopes = req.Scope
		m.Token = "fake-iam-at-" + randomB64(24)
		body, _ = json.Marshal(map[string]string{"accessToken": m.Token, "expireTime": exp.UTC().Format(time.RFC3339)})
	} else {
		if req.Audience == "" {
			apiError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "Audience required.")
			return
		}
		c := idClaims{Issuer: Issuer, Audience: req.Audience, AuthorizedBy: userSub(target), Subject: userSub(target), IssuedAt: now.Unix(), Expiry: exp.Unix()}
		if req.IncludeEmail {
			c.Email, c.EmailVerified = target, true
		}
		tok, err := jwt.Signed(s.signer).Claims(c).Serialize()
		if err != nil {
			apiError(w, http.StatusInternalServerError, "INTERNAL", "signing failed")
			return
		}
		m.Audience, m.Token = req.Audience, tok
		body, _ = json.Marshal(map[string]string{"token": tok})
	}
	s.mu.Lock()
	s.mints = append(s.mints, m)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.Write(body)
}

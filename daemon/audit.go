package daemon

import (
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"
)

// AuditEntry is one line of the audit log. It names what was issued, to
// whom and how it went; it never holds a token or secret.
type AuditEntry struct {
	Time     time.Time `json:"time"`
	Event    string    `json:"event"` // "issue", "session.create", "session.revoke", ...
	Session  string    `json:"session,omitempty"`
	Frontend string    `json:"frontend,omitempty"`
	Account  string    `json:"account,omitempty"`
	Kind     string    `json:"kind,omitempty"` // "access" or "id"
	Scopes   []string  `json:"scopes,omitempty"`
	Audience string    `json:"audience,omitempty"`
	PeerPID  int32     `json:"peer_pid,omitempty"`
	PeerUID  *int64    `json:"peer_uid,omitempty"`
	Latency  float64   `json:"latency_ms,omitempty"`
	Outcome  string    `json:"outcome"` // "ok", or the error class
	Expires  time.Time `json:"token_expiry,omitzero"`
	Detail   string    `json:"detail,omitempty"`
}

// Audit appends entries as JSON lines to a 0600 file.
type Audit struct {
	mu  sync.Mutex
	f   *os.File
	enc *json.Encoder

	recent eventRing // the last entries, for the dashboard
}

// OpenAudit opens (creating 0600) the audit log at path for appending.
func OpenAudit(path string) (*Audit, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("daemon: audit log: %w", err)
	}
	info, err := f.Stat()
	if err == nil && info.Mode().Perm()&0o077 != 0 {
		err = fmt.Errorf("%s is readable by others (mode %v); make it 0600", path, info.Mode().Perm())
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("daemon: audit log: %w", err)
	}
	return &Audit{f: f, enc: json.NewEncoder(f)}, nil
}

// Log writes one entry. A failed write is returned for the caller to
// report; it does not stop the issuance it describes.
func (a *Audit) Log(e AuditEntry) error {
	if a == nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.recent.add(e)
	return a.enc.Encode(e)
}

// Close closes the file.
func (a *Audit) Close() error {
	if a == nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.f.Close()
}

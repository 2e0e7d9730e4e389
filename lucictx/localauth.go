package lucictx

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// LocalAuthSection is the name of the local_auth section.
const LocalAuthSection = "local_auth"

// ErrNoLocalAuthAccount is returned when switching to an account that the
// local_auth section does not list, or when there is no local_auth section.
var ErrNoLocalAuthAccount = errors.New("lucictx: no such local_auth account")

// LocalAuth is the local_auth section: where a LUCI local_auth token server
// listens and which accounts it serves.
//
// Its JSON form is written with the fields in the order rpc_port, secret,
// accounts, default_account_id, empty accounts and default account left
// out, and the secret in padded standard base64. Reading accepts rpc_port
// as a number or a quoted number, the secret in standard or URL-safe
// base64 with or without padding, the lowerCamel field names some proto
// writers use, and ignores unknown fields.
type LocalAuth struct {
	// RPCPort is the server's TCP port on 127.0.0.1.
	RPCPort uint32
	// Secret is the shared secret clients send with each request. It is a
	// credential: never log it.
	Secret []byte
	// Accounts are the accounts the server serves, sorted by ID.
	Accounts []LocalAuthAccount
	// DefaultAccountID is the account clients use; empty means clients
	// should not pick up ambient credentials from this section.
	DefaultAccountID string
}

// LocalAuthAccount is one account a local_auth server serves.
type LocalAuthAccount struct {
	ID string `json:"id"`
	// Email is the account's email, or "-" when it has none ("" is read
	// the same way, for servers that did not send it).
	Email string `json:"email"`
}

// NoEmail is the Email of an account that has no email.
const NoEmail = "-"

// Account returns the account with the given id.
func (la *LocalAuth) Account(id string) (LocalAuthAccount, bool) {
	for _, a := range la.Accounts {
		if a.ID == id {
			return a, true
		}
	}
	return LocalAuthAccount{}, false
}

// MarshalJSON writes the section in the field order LUCI's own writer uses.
func (la LocalAuth) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString(`{"rpc_port":`)
	buf.WriteString(strconv.FormatUint(uint64(la.RPCPort), 10))
	buf.WriteString(`,"secret":"`)
	buf.WriteString(base64.StdEncoding.EncodeToString(la.Secret))
	buf.WriteByte('"')
	if len(la.Accounts) > 0 {
		accounts, err := json.Marshal(la.Accounts)
		if err != nil {
			return nil, err
		}
		buf.WriteString(`,"accounts":`)
		buf.Write(accounts)
	}
	if la.DefaultAccountID != "" {
		id, err := json.Marshal(la.DefaultAccountID)
		if err != nil {
			return nil, err
		}
		buf.WriteString(`,"default_account_id":`)
		buf.Write(id)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// UnmarshalJSON reads the section leniently (see LocalAuth).
func (la *LocalAuth) UnmarshalJSON(data []byte) error {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		return fmt.Errorf("local_auth: %w", err)
	}
	if fields == nil {
		return errors.New("local_auth: not a JSON object")
	}
	field := func(snake, camel string) (json.RawMessage, bool) {
		if raw, ok := fields[snake]; ok && string(raw) != "null" {
			return raw, true
		}
		if raw, ok := fields[camel]; ok && string(raw) != "null" {
			return raw, true
		}
		return nil, false
	}
	var out LocalAuth
	if raw, ok := field("rpc_port", "rpcPort"); ok {
		port, err := parsePort(raw)
		if err != nil {
			return fmt.Errorf("local_auth: rpc_port: %w", err)
		}
		out.RPCPort = port
	}
	if raw, ok := field("secret", "secret"); ok {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return errors.New("local_auth: secret: not a string")
		}
		secret, err := decodeSecret(s)
		if err != nil {
			// The error from base64 is safe (an offset), but the value is not
			// repeated here: it is a credential.
			return fmt.Errorf("local_auth: secret: %w", err)
		}
		out.Secret = secret
	}
	if raw, ok := field("accounts", "accounts"); ok {
		if err := json.Unmarshal(raw, &out.Accounts); err != nil {
			return fmt.Errorf("local_auth: accounts: %w", err)
		}
	}
	if raw, ok := field("default_account_id", "defaultAccountId"); ok {
		if err := json.Unmarshal(raw, &out.DefaultAccountID); err != nil {
			return fmt.Errorf("local_auth: default_account_id: %w", err)
		}
	}
	*la = out
	return nil
}

// parsePort reads a uint32 given as a JSON number or a quoted number, the
// two forms proto3 JSON readers accept.
func parsePort(raw json.RawMessage) (uint32, error) {
	text := string(raw)
	if len(raw) > 0 && raw[0] == '"' {
		if err := json.Unmarshal(raw, &text); err != nil {
			return 0, err
		}
	}
	n, err := strconv.ParseUint(text, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%q is not a port number", text)
	}
	return uint32(n), nil
}

// decodeSecret accepts padded or unpadded, standard or URL-safe base64.
// Only padded standard base64 is ever written.
func decodeSecret(s string) ([]byte, error) {
	var firstErr error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		b, err := enc.DecodeString(s)
		if err == nil {
			return b, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, firstErr
}

// LocalAuth returns the typed local_auth section, or nil when there is
// none.
func (c *Context) LocalAuth() (*LocalAuth, error) {
	la := &LocalAuth{}
	ok, err := c.Get(LocalAuthSection, la)
	if err != nil || !ok {
		return nil, err
	}
	return la, nil
}

// SetLocalAuth returns a context whose local_auth section is la; nil
// deletes the section.
func (c *Context) SetLocalAuth(la *LocalAuth) *Context {
	if la == nil {
		return c.Delete(LocalAuthSection)
	}
	raw, _ := la.MarshalJSON() // cannot fail: only strings and numbers
	out := c.clone()
	out.sections[LocalAuthSection] = raw
	return out
}

// SwitchLocalAccount returns a context whose local_auth default account is
// id, for children that should act as another of the served accounts. It
// returns c itself when id is already the default, and an error wrapping
// ErrNoLocalAuthAccount when there is no local_auth section or it does not
// list id. The switched section is re-encoded from its typed form, so
// fields of local_auth this package does not know are not carried over.
func (c *Context) SwitchLocalAccount(id string) (*Context, error) {
	la, err := c.LocalAuth()
	if err != nil {
		return nil, err
	}
	if la == nil {
		return nil, fmt.Errorf("%w: no %q section", ErrNoLocalAuthAccount, LocalAuthSection)
	}
	if la.DefaultAccountID == id {
		return c, nil
	}
	if _, ok := la.Account(id); !ok {
		return nil, fmt.Errorf("%w: %q", ErrNoLocalAuthAccount, id)
	}
	la.DefaultAccountID = id
	return c.SetLocalAuth(la), nil
}

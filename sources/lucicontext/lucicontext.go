package lucicontext

import (
	"errors"
	"fmt"

	"credbroker/lucictx"
	"credbroker/protocols/localauth"
)

// ErrNoContext is wrapped when the environment has no usable local_auth.
var ErrNoContext = errors.New("no LUCI_CONTEXT local_auth with a default account")

// Upstream describes the chosen upstream, for `credbroker info`.
type Upstream struct {
	Path     string // the LUCI_CONTEXT file
	Port     uint32 // its local_auth rpc_port
	Account  string // the account asked for
	Accounts []string
}

// FromEnv returns a Source for account (the section's default account
// when "") of the local_auth server that env's LUCI_CONTEXT names.
func FromEnv(env []string, account string) (*localauth.Client, Upstream, error) {
	path, ok := lucictx.LookupEnv(env)
	if !ok || path == "" {
		return nil, Upstream{}, fmt.Errorf("%w: LUCI_CONTEXT is not set", ErrNoContext)
	}
	c, _, err := lucictx.Load(path)
	if err != nil {
		return nil, Upstream{Path: path}, err
	}
	la, err := c.LocalAuth()
	if err != nil {
		return nil, Upstream{Path: path}, err
	}
	if la == nil {
		return nil, Upstream{Path: path}, fmt.Errorf("%w: LUCI_CONTEXT %s has no local_auth section", ErrNoContext, path)
	}
	up := Upstream{Path: path, Port: la.RPCPort, Account: account}
	for _, a := range la.Accounts {
		up.Accounts = append(up.Accounts, a.ID)
	}
	if account == "" {
		if la.DefaultAccountID == "" {
			return nil, up, fmt.Errorf("%w: LUCI_CONTEXT %s has local_auth without default_account_id", ErrNoContext, path)
		}
		account = la.DefaultAccountID
		up.Account = account
	}
	cl, err := localauth.NewClientFor(la, account)
	if err != nil {
		return nil, up, fmt.Errorf("upstream LUCI_CONTEXT %s: %w (it serves %v)", path, err, up.Accounts)
	}
	return cl, up, nil
}

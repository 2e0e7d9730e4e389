package main

import (
	"log/slog"
	"strings"

	"github.com/urfave/cli/v2"
)

// accountSpecs returns the credential specs of `--account ID=SPEC`
// flags, by id.
func accountSpecs(c *cli.Context) map[string]string {
	specs := map[string]string{}
	for _, a := range c.StringSlice("account") {
		if id, spec, ok := strings.Cut(a, "="); ok {
			specs[id] = spec
		}
	}
	return specs
}

// credentialsFor selects the credential of every served account: those
// given as `ID=SPEC` get SPEC's; the others share the one chosen by the
// credential flags and auto-selection, which is only looked for when some
// account needs it (shared is nil otherwise). def is the credential of
// the default account.
func credentialsFor(c *cli.Context, ids []string, defID string, log *slog.Logger) (shared, def *credential, perAccount map[string]*credential, err error) {
	specs := accountSpecs(c)
	perAccount = map[string]*credential{}
	sel, _ := newSelector(c, log)
	for _, id := range ids {
		spec, ok := specs[id]
		if !ok {
			if shared == nil {
				if shared, err = sel.choose(); err != nil {
					return nil, nil, nil, err
				}
			}
			continue
		}
		cred, err := sel.fromSpec(spec, "--account "+id+"="+spec)
		if err != nil {
			return nil, nil, nil, err
		}
		perAccount[id] = cred
	}
	def = shared
	if pc, ok := perAccount[defID]; ok {
		def = pc
	}
	return shared, def, perAccount, nil
}

// exitWith turns a child's outcome into the broker's exit.
func exitWith(code int, err error) error {
	if err != nil {
		return cli.Exit("credbroker: "+err.Error(), max(code, 1))
	}
	if code == 0 {
		return nil
	}
	return cli.Exit("", code)
}

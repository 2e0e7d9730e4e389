package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/urfave/cli/v2"
)

func infoCommand() *cli.Command {
	return &cli.Command{
		Name:      "info",
		Usage:     "show which credential would be used, its account and scopes",
		UsageText: "credbroker info [credential flags] [--json]",
		Description: "Explains the credential choice without minting a token: the source, what selected\n" +
			"it and what auto-selection looked at before, the email, the accounts local_auth would\n" +
			"serve (with their own credentials for --account ID=SPEC) and the default scopes.",
		Flags: append(append(append(credentialFlags(), scopeFlags()...), logFlags()...),
			&cli.StringSliceFlag{Name: "account", Usage: "local_auth account `ID` (repeatable)"},
			&cli.StringFlag{Name: "default-account", Usage: "the default account `ID`"},
			&cli.BoolFlag{Name: "json", Usage: "print JSON"},
		),
		Action: infoAction,
	}
}

type infoOutput struct {
	Source         string   `json:"source"`
	Detail         string   `json:"detail"`
	SelectedBy     string   `json:"selected_by"`
	Email          string   `json:"email"`
	ProjectID      string   `json:"project_id,omitempty"`
	Accounts       []string `json:"accounts"`
	DefaultAccount string   `json:"default_account"`
	Scopes         []string `json:"scopes"`
	// Considered is what auto-selection looked at before its choice.
	Considered []string `json:"considered,omitempty"`
	// AccountSources describes accounts with a credential of their own.
	AccountSources map[string]string `json:"account_sources,omitempty"`
}

func infoAction(c *cli.Context) error {
	scopes, err := scopesFrom(c)
	if err != nil {
		return err
	}
	ids, def, err := accountIDs(c)
	if err != nil {
		return err
	}
	log, err := newLogger(c)
	if err != nil {
		return err
	}
	_, cred, perAccount, err := credentialsFor(c, ids, def, log)
	if err != nil {
		return err
	}
	out := infoOutput{
		Source: cred.kind, Detail: cred.detail, SelectedBy: cred.selection,
		ProjectID: cred.projectID, Considered: cred.considered,
		Accounts: ids, DefaultAccount: def, Scopes: scopes,
	}
	if cred.src != nil {
		out.Email = cred.src.Email()
	}
	for id, pc := range perAccount {
		if out.AccountSources == nil {
			out.AccountSources = map[string]string{}
		}
		out.AccountSources[id] = fmt.Sprintf("%s (%s)", pc.kind, pc.detail)
	}
	if c.Bool("json") {
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	w := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "source:\t%s (%s)\n", out.Source, out.Detail)
	fmt.Fprintf(w, "selected by:\t%s\n", out.SelectedBy)
	for i, line := range out.Considered {
		label := ""
		if i == 0 {
			label = "passed over:"
		}
		fmt.Fprintf(w, "%s\t%s\n", label, line)
	}
	fmt.Fprintf(w, "email:\t%s\n", out.Email)
	if out.ProjectID != "" {
		fmt.Fprintf(w, "project:\t%s\n", out.ProjectID)
	}
	fmt.Fprintf(w, "accounts:\t%v (default %s)\n", out.Accounts, out.DefaultAccount)
	for _, id := range out.Accounts {
		if src, ok := out.AccountSources[id]; ok {
			fmt.Fprintf(w, "  %s:\t%s\n", id, src)
		}
	}
	fmt.Fprintf(w, "scopes:\t%s\n", shortScopes(out.Scopes))
	return w.Flush()
}

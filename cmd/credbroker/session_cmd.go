package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"credbroker/daemon"

	"github.com/urfave/cli/v2"
)

var (
	socketFlag = &cli.StringFlag{
		Name:     "socket",
		Usage:    "the daemon's admin socket `PATH` (default: admin.sock in the runtime directory)",
		EnvVars:  []string{"CREDBROKER_SOCKET"},
		Category: "Daemon",
	}
	jsonFlag = &cli.BoolFlag{Name: "json", Usage: "print JSON for programs"}
)

// adminClient connects to the daemon named by --socket or the default
// paths. Inside a session, its token authenticates the calls.
func adminClient(c *cli.Context) (*daemon.Client, error) {
	path := c.String("socket")
	if path == "" {
		p, err := daemon.DefaultPaths(os.Getenv)
		if err != nil {
			return nil, brokerError(err)
		}
		path = p.Socket()
	}
	return daemon.NewClient(path), nil
}

func sessionCommand() *cli.Command {
	return &cli.Command{
		Name:  "session",
		Usage: "create, list, show and revoke sessions of the daemon",
		Subcommands: []*cli.Command{
			{
				Name:      "create",
				Usage:     "start a session and print the environment that uses it",
				UsageText: "eval \"$(credbroker session create [flags])\"",
				Description: "Starts the session's front-ends in the daemon and prints shell commands that\n" +
					"point the environment at them (for bash and zsh: eval them), or JSON with --json.\n" +
					"The output holds the session token (" + daemon.EnvSessionToken + "); it is shown only\n" +
					"this once.",
				Flags: append(append([]cli.Flag{
					socketFlag, jsonFlag,
					&cli.DurationFlag{Name: "ttl", Value: 8 * time.Hour, Usage: "how long the session lives"},
					&cli.DurationFlag{Name: "stale", Usage: "end the session after this long without a request (default: never)"},
					&cli.StringSliceFlag{Name: "account", Usage: "account `ID` to serve (repeatable; default: the daemon's default)"},
					&cli.StringFlag{Name: "default-account", Usage: "the account `ID` children use by default"},
					&cli.StringFlag{Name: "project", Usage: "project `ID` to report"},
				}, scopeFlags()...), frontendFlags...),
				Action: sessionCreateAction,
			},
			{
				Name:  "list",
				Usage: "list sessions",
				Flags: []cli.Flag{
					socketFlag, jsonFlag,
					&cli.StringSliceFlag{Name: "status", Usage: "only sessions with this `STATUS` (pending, issued, failed, \"system error\"; repeatable)"},
					&cli.Int64Flag{Name: "owner", Usage: "only sessions of this `UID`"},
					&cli.IntFlag{Name: "limit", Usage: "at most `N` sessions (default 1000)"},
				},
				Action: sessionListAction,
			},
			{
				Name:      "show",
				Usage:     "describe one session (never its token)",
				ArgsUsage: "ID",
				Flags:     []cli.Flag{socketFlag, jsonFlag},
				Action:    sessionShowAction,
			},
			{
				Name:      "revoke",
				Usage:     "end a session at once: its servers stop, open connections included, and its files go",
				ArgsUsage: "[ID]  (default: the session this shell is in, by its " + daemon.EnvSessionToken + ")",
				Flags:     []cli.Flag{socketFlag},
				Action:    sessionRevokeAction,
			},
		},
	}
}

// createRequest builds a session request from the flags shared by
// `session create` and `run --daemon`.
func createRequest(c *cli.Context) (daemon.CreateRequest, error) {
	fe, err := frontendsFrom(c)
	if err != nil {
		return daemon.CreateRequest{}, err
	}
	scopes, err := scopesFrom(c)
	if err != nil {
		return daemon.CreateRequest{}, err
	}
	req := daemon.CreateRequest{
		Accounts:       c.StringSlice("account"),
		DefaultAccount: c.String("default-account"),
		Scopes:         scopes,
		Project:        c.String("project"),
		Frontends:      daemon.Frontends{LocalAuth: fe.LocalAuth, GCEMeta: fe.GCEMeta, Devshell: fe.Devshell, Gsutil: fe.Gsutil, BotoGCE: fe.BotoGCE},
	}
	if c.IsSet("ttl") {
		req.TTL = c.Duration("ttl").String()
	}
	if c.IsSet("stale") {
		req.Stale = c.Duration("stale").String()
	}
	for _, k := range daemon.ParentEnvKeys {
		if v, ok := os.LookupEnv(k); ok {
			req.Env = append(req.Env, k+"="+v)
		}
	}
	return req, nil
}

func sessionCreateAction(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageError("session create takes no arguments")
	}
	req, err := createRequest(c)
	if err != nil {
		return err
	}
	cl, err := adminClient(c)
	if err != nil {
		return err
	}
	out, err := cl.Create(c.Context, req)
	if err != nil {
		return brokerError(err)
	}
	w := c.App.Writer
	if c.Bool("json") {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	writeShellEnv(w, out)
	return nil
}

// writeShellEnv prints the session's environment as POSIX shell commands.
func writeShellEnv(w io.Writer, out *daemon.Created) {
	for _, v := range out.Set {
		fmt.Fprintf(w, "export %s=%s;\n", v.Name, shellQuote(v.Value))
	}
	for _, k := range out.Unset {
		fmt.Fprintf(w, "unset %s;\n", k)
	}
	fmt.Fprintf(w, "# credbroker session %s %s until %s; end it with: credbroker session revoke %s\n",
		out.ID, out.Status, out.Expires.Local().Format(time.RFC3339), out.ID)
}

// shellQuote single-quotes s for POSIX shells.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func sessionListAction(c *cli.Context) error {
	cl, err := adminClient(c)
	if err != nil {
		return err
	}
	q := daemon.ListQuery{Statuses: c.StringSlice("status"), Limit: c.Int("limit")}
	if c.IsSet("owner") {
		uid := c.Int64("owner")
		q.Owner = &uid
	}
	list, err := cl.List(c.Context, q)
	if err != nil {
		return brokerError(err)
	}
	if c.Bool("json") {
		if list == nil {
			list = []daemon.Info{}
		}
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		return enc.Encode(list)
	}
	writeSessionTable(c.App.Writer, list)
	return nil
}

func writeSessionTable(w io.Writer, list []daemon.Info) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tOWNER\tCREATED\tEXPIRES\tLAST USED\tFRONT-ENDS")
	for _, s := range list {
		status := s.Status
		if s.Status == "issued" && !s.Running {
			status += " (not running)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\n", s.ID, status, s.OwnerUID,
			when(s.Created), when(s.Expires), when(s.LastUsed), endpointNames(s))
	}
	tw.Flush()
}

func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

func endpointNames(s daemon.Info) string {
	var names []string
	for _, ep := range s.Endpoints {
		names = append(names, ep.Name)
	}
	if len(names) == 0 {
		return "-"
	}
	return strings.Join(names, ",")
}

func sessionShowAction(c *cli.Context) error {
	if c.NArg() != 1 {
		return usageError("usage: credbroker session show ID")
	}
	cl, err := adminClient(c)
	if err != nil {
		return err
	}
	s, err := cl.Show(c.Context, c.Args().First())
	if err != nil {
		return brokerError(err)
	}
	w := c.App.Writer
	if c.Bool("json") {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(s)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", k, v)
		}
	}
	row("id", s.ID)
	row("status", s.Status)
	row("reason", s.Reason)
	row("running", fmt.Sprint(s.Running))
	row("owner uid", fmt.Sprint(s.OwnerUID))
	row("created", when(s.Created))
	row("expires", when(s.Expires))
	row("last used", when(s.LastUsed))
	row("stale after", s.Stale)
	row("accounts", strings.Join(s.Accounts, " "))
	row("default account", s.DefaultAccount)
	row("scopes", shortScopes(s.Scopes))
	row("project", s.Project)
	for _, ep := range s.Endpoints {
		row(ep.Name, ep.Addr)
	}
	row("directory", s.Dir)
	return tw.Flush()
}

func sessionRevokeAction(c *cli.Context) error {
	cl, err := adminClient(c)
	if err != nil {
		return err
	}
	id := c.Args().First()
	if c.NArg() > 1 {
		return usageError("usage: credbroker session revoke [ID]")
	}
	if id == "" {
		// The shell's own session: its token proves which one.
		cred := os.Getenv(daemon.EnvSessionToken)
		if cred == "" {
			return usageError("give the session ID (no %s in the environment)", daemon.EnvSessionToken)
		}
		cl.Bearer = cred
		id = os.Getenv(daemon.EnvSession)
	}
	if err := cl.Revoke(c.Context, id); err != nil {
		return brokerError(err)
	}
	fmt.Fprintln(c.App.Writer, "revoked", id)
	return nil
}

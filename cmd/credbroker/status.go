package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"
)

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:   "status",
		Usage:  "show the daemon's sessions and counters",
		Flags:  []cli.Flag{socketFlag, jsonFlag},
		Action: statusAction,
	}
}

func statusAction(c *cli.Context) error {
	cl, err := adminClient(c)
	if err != nil {
		return err
	}
	st, err := cl.Status(c.Context)
	if err != nil {
		return brokerError(err)
	}
	w := c.App.Writer
	if c.Bool("json") {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	fmt.Fprintf(w, "daemon pid %d, up %s, socket %s\n\n", st.PID, time.Since(st.Started).Round(time.Second), st.Socket)
	fmt.Fprintf(w, "token cache: %d hits, %d misses, %d mints, %d mint errors, %d cached\n\n",
		st.Cache.Hits, st.Cache.Misses, st.Cache.Mints, st.Cache.MintErrors, st.Cache.Entries)
	names := make([]string, 0, len(st.Frontends))
	for n := range st.Frontends {
		names = append(names, n)
	}
	slices.Sort(names)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FRONT-END\tREQUESTS\tERRORS\tMEAN LATENCY")
	for _, n := range names {
		f := st.Frontends[n]
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.2fms\n", n, f.Requests, f.Errors, f.MeanMS)
	}
	tw.Flush()
	fmt.Fprintf(w, "\n%d session(s)\n", len(st.Sessions))
	if len(st.Sessions) > 0 {
		writeSessionTable(w, st.Sessions)
	}
	return nil
}

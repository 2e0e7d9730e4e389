package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"credbroker/internal/bench"

	"github.com/urfave/cli/v2"
)

func benchCommand() *cli.Command {
	return &cli.Command{
		Name:  "bench",
		Usage: "measure every front-end against a bare baseline server, in this run, on this machine",
		UsageText: "credbroker bench [--duration D] [--concurrency 1,16,64] [--json]\n" +
			"   credbroker bench --quick",
		Description: "Starts a session (`credbroker run` in a child process, with a service-account key for a\n" +
			"loopback fake Google endpoint) and, for each front-end at each concurrency, measures the\n" +
			"cached-token path against a bare server in its own process answering as many bytes\n" +
			"(net/http; raw TCP for devshell): requests/s, latency quantiles and the server process's\n" +
			"CPU time per request. Then a cold burst for a new scope set (upstream mints), an expiry\n" +
			"storm (short-lived, slow-to-mint upstream tokens), the memory of cached entries and the\n" +
			"cost of `credbroker run -- true`. Nothing leaves loopback. See docs/performance.md.",
		Flags: []cli.Flag{
			&cli.DurationFlag{Name: "duration", Value: 5 * time.Second, Usage: "length of each throughput measurement"},
			&cli.IntFlag{Name: "rounds", Value: 4, Usage: "turns the baseline and the broker take, alternating, within each measurement's duration"},
			&cli.StringFlag{Name: "concurrency", Value: "1,16,64", Usage: "connection counts to measure at, comma-separated"},
			&cli.StringFlag{Name: "frontends", Usage: "front-ends to measure, comma-separated (default: all of " + strings.Join(bench.Frontends, ",") + ")"},
			&cli.DurationFlag{Name: "storm-duration", Value: 40 * time.Second, Usage: "length of the expiry storm per front-end (0 skips it)"},
			&cli.DurationFlag{Name: "storm-lifetime", Value: 30 * time.Second, Usage: "lifetime of upstream tokens during the storm"},
			&cli.DurationFlag{Name: "storm-latency", Value: 300 * time.Millisecond, Usage: "upstream mint latency during the storm"},
			&cli.IntFlag{Name: "burst", Value: 1000, Usage: "concurrent requests of the cold burst (0 skips it)"},
			&cli.IntFlag{Name: "entries", Value: 100_000, Usage: "cache entries for the memory figure (0 skips it)"},
			&cli.IntFlag{Name: "run-true", Value: 20, Usage: "timed runs of `credbroker run -- true` (0 skips them)"},
			&cli.BoolFlag{Name: "quick", Usage: "a short smoke run: 1s measurements at 1 and 16 connections, a 5s storm, 100-request burst"},
			&cli.BoolFlag{Name: "json", Usage: "print the report as JSON instead of a table"},
			&cli.StringFlag{Name: "profile", Usage: "write CPU profiles of the broker and each baseline during the throughput runs to `DIR` (compare with go tool pprof -diff_base)"},
			&cli.StringFlag{Name: "from-json", Usage: "print the table of a report saved with --json from `FILE`, measuring nothing"},
			// The benchmark's own child processes.
			&cli.BoolFlag{Name: "probe", Hidden: true},
			&cli.StringFlag{Name: "serve-baseline", Hidden: true},
			&cli.IntFlag{Name: "time-run", Hidden: true},
			&cli.BoolFlag{Name: "start-only", Hidden: true},
		},
		Action: benchAction,
	}
}

func benchAction(c *cli.Context) error {
	if c.Bool("start-only") {
		return nil // the binary's own start, timed beside run -- true
	}
	if c.Bool("probe") {
		return bench.Probe(c.App.Writer, os.Stdin)
	}
	if v := c.String("serve-baseline"); v != "" {
		kind, path, _ := strings.Cut(v, ":")
		body, err := os.ReadFile(path)
		if err != nil {
			return brokerError(err)
		}
		header, err := bench.ReadHeader(path)
		if err != nil {
			return brokerError(err)
		}
		if err := bench.ServeBaseline(kind, body, header, c.App.Writer, os.Stdin); err != nil {
			return brokerError(err)
		}
		return nil
	}
	if n := c.Int("time-run"); n > 0 {
		exe, err := os.Executable()
		if err != nil {
			return brokerError(err)
		}
		res, err := bench.RunTrue(exe, n, c.Args().Slice())
		if err != nil {
			return brokerError(err)
		}
		return json.NewEncoder(c.App.Writer).Encode(res)
	}
	if path := c.String("from-json"); path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return brokerError(err)
		}
		var rep bench.Report
		if err := json.Unmarshal(data, &rep); err != nil {
			return brokerError(err)
		}
		rep.WriteTable(c.App.Writer)
		return nil
	}
	exe, err := os.Executable()
	if err != nil {
		return brokerError(err)
	}
	cfg := bench.Config{
		Exe:           exe,
		Duration:      c.Duration("duration"),
		Rounds:        c.Int("rounds"),
		StormDuration: c.Duration("storm-duration"),
		StormLifetime: c.Duration("storm-lifetime"),
		StormLatency:  c.Duration("storm-latency"),
		BurstSize:     c.Int("burst"),
		Entries:       c.Int("entries"),
		RunTrueRuns:   c.Int("run-true"),
		Progress:      c.App.ErrWriter,
	}
	if dir := c.String("profile"); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return brokerError(err)
		}
		if cfg.ProfileDir, err = filepath.Abs(dir); err != nil {
			return brokerError(err)
		}
	}
	if cfg.Rounds < 1 || cfg.Rounds > 100 {
		return usageError("--rounds %d: want 1 to 100", cfg.Rounds)
	}
	conc := c.String("concurrency")
	if c.Bool("quick") {
		// Only what the user did not set explicitly.
		if !c.IsSet("duration") {
			cfg.Duration = time.Second
		}
		if !c.IsSet("storm-duration") {
			cfg.StormDuration = 5 * time.Second
		}
		if !c.IsSet("burst") {
			cfg.BurstSize = 100
		}
		if !c.IsSet("run-true") {
			cfg.RunTrueRuns = 5
		}
		if !c.IsSet("rounds") {
			cfg.Rounds = 1
		}
		if !c.IsSet("concurrency") {
			conc = "1,16"
		}
	}
	for _, f := range strings.Split(conc, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 1024 {
			return usageError("--concurrency %q: want numbers from 1 to 1024", conc)
		}
		cfg.Concurrency = append(cfg.Concurrency, n)
	}
	if f := c.String("frontends"); f != "" {
		for _, name := range strings.Split(f, ",") {
			if !contains(bench.Frontends, name) {
				return usageError("--frontends: unknown front-end %q (want %s)", name, strings.Join(bench.Frontends, ","))
			}
			cfg.Frontends = append(cfg.Frontends, name)
		}
	}
	rep, err := bench.Run(c.Context, cfg)
	if rep == nil {
		return brokerError(err)
	}
	if c.Bool("json") {
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return brokerError(err)
		}
	} else {
		rep.WriteTable(c.App.Writer)
	}
	if err != nil {
		return brokerError(err)
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

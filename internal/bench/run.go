package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"credbroker/broker"
	"credbroker/internal/fakegoogle"
)

// Config says what to measure.
type Config struct {
	// Exe is the credbroker binary; sessions and baselines run as child
	// processes of it.
	Exe string
	// Duration of each throughput measurement (each front-end × each
	// concurrency, and the same for its baseline).
	Duration time.Duration
	// Rounds is how many turns the baseline and the broker take at each
	// concurrency, sharing Duration; 1 measures each once.
	Rounds int
	// Concurrency lists the numbers of connections to measure at.
	Concurrency []int
	// Frontends to measure; all when empty.
	Frontends []string
	// StormDuration is how long each front-end is loaded while upstream
	// tokens expire; 0 skips the storm.
	StormDuration time.Duration
	// StormLifetime and StormLatency shape the upstream of the storm.
	StormLifetime, StormLatency time.Duration
	// BurstSize is the number of concurrent requests of the cold burst;
	// 0 skips it.
	BurstSize int
	// Entries is the number of cache entries the memory figure is
	// taken over; 0 skips it.
	Entries int
	// RunTrueRuns is how often `credbroker run -- true` is timed; 0 skips.
	RunTrueRuns int
	// Progress gets a line per second while a measurement runs.
	Progress io.Writer
	// ProfileDir, when set, gets a CPU profile of each process measured
	// in the throughput section: broker.prof of the session (all its
	// front-ends; choose one with Frontends to profile it alone) and
	// baseline-NAME.prof of each baseline, for go tool pprof -diff_base.
	ProfileDir string
}

// Report is everything one run measured.
type Report struct {
	Started   time.Time `json:"started"`
	GoVersion string    `json:"go_version"`
	CPUs      int       `json:"cpus"`
	LoadAvg   string    `json:"loadavg_before"`
	LoadAfter string    `json:"loadavg_after,omitempty"`
	// Build is how the measured binary was built (cgo, tags): a binary
	// linked against the C library starts with more resident memory.
	Build string `json:"build,omitempty"`
	// Rounds is Config.Rounds of the throughput section.
	Rounds     int             `json:"rounds,omitempty"`
	Throughput []ThroughputRow `json:"throughput"`
	ColdBurst  []BurstRow      `json:"cold_burst,omitempty"`
	Storm      []StormRow      `json:"expiry_storm,omitempty"`
	// StormFloor is the storm's load against a bare server: the slow
	// requests the machine itself causes, with no token work at all.
	StormFloor *Result        `json:"expiry_storm_baseline,omitempty"`
	Memory     *MemoryResult  `json:"memory,omitempty"`
	RunTrue    *RunTrueResult `json:"run_true,omitempty"`
	// RunTrueSA is the same with the service-account source against the
	// fake Google endpoint, which mints once before the child starts.
	RunTrueSA *RunTrueResult `json:"run_true_service_account,omitempty"`
}

// ThroughputRow compares a front-end's cached-token path with its
// baseline at one concurrency.
type ThroughputRow struct {
	Frontend    string        `json:"frontend"`
	Concurrency int           `json:"concurrency"`
	Ours        Result        `json:"broker"`
	Base        Result        `json:"baseline"`
	OursCPU     time.Duration `json:"broker_cpu_per_request_ns"`
	BaseCPU     time.Duration `json:"baseline_cpu_per_request_ns"`
	RPSRatio    float64       `json:"rps_ratio"`
	CPURatio    float64       `json:"cpu_ratio"`
	P99Ratio    float64       `json:"p99_ratio"`
	AnswerBytes int           `json:"answer_bytes"`
}

// BurstRow is a cold burst: many requests at once for a scope set no one
// asked for before.
type BurstRow struct {
	Frontend string        `json:"frontend"`
	Requests int           `json:"requests"`
	Errors   int           `json:"errors"`
	Mints    int           `json:"upstream_mints"`
	Wall     time.Duration `json:"wall_ns"`
}

// StormRow is a front-end loaded while upstream tokens keep expiring.
type StormRow struct {
	Frontend string `json:"frontend"`
	Result   Result `json:"result"`
	Mints    int    `json:"upstream_mints"`
}

// MemoryResult is the heap cost of cached tokens.
type MemoryResult struct {
	Entries       int     `json:"entries"`
	BytesPerEntry float64 `json:"bytes_per_entry"`
	TokenBytes    int     `json:"token_bytes"`
}

// RunTrueResult is the cost of `credbroker run -- true`.
type RunTrueResult struct {
	Source     string        `json:"source"`
	Runs       int           `json:"runs"`
	WallMedian time.Duration `json:"wall_median_ns"`
	WallMax    time.Duration `json:"wall_max_ns"`
	PeakRSSKiB int64         `json:"peak_rss_kib"`
	// StartMedian is the median wall time of the same binary starting
	// and exiting at once (`credbroker bench --start-only`), timed in
	// turns with the runs: the floor this machine puts under any
	// command of this binary, session or not.
	StartMedian time.Duration `json:"start_median_ns,omitempty"`
}

// Run measures everything cfg asks for.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	load, _ := os.ReadFile("/proc/loadavg")
	rep := &Report{Started: time.Now().UTC(), GoVersion: runtime.Version(), CPUs: runtime.NumCPU(), LoadAvg: string(trimNL(load)), Build: buildSettings()}
	defer func() {
		load, _ := os.ReadFile("/proc/loadavg")
		rep.LoadAfter = string(trimNL(load))
	}()
	fg, err := fakegoogle.Start()
	if err != nil {
		return nil, err
	}
	defer fg.Close()
	dir, err := os.MkdirTemp("", "credbroker-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	key, err := fg.NewKey("bench@bench-project.iam.gserviceaccount.com")
	if err != nil {
		return nil, err
	}
	keyPath, err := key.WriteFile(dir)
	if err != nil {
		return nil, err
	}
	b := &runner{cfg: cfg, fg: fg, dir: dir, keyPath: keyPath}

	if len(cfg.Concurrency) > 0 && cfg.Duration > 0 {
		rep.Rounds = max(cfg.Rounds, 1)
		if rep.Throughput, err = b.throughput(ctx); err != nil {
			return rep, err
		}
	}
	if cfg.BurstSize > 0 {
		if rep.ColdBurst, err = b.coldBurst(ctx); err != nil {
			return rep, err
		}
	}
	if cfg.StormDuration > 0 {
		if rep.Storm, rep.StormFloor, err = b.storm(ctx); err != nil {
			return rep, err
		}
	}
	if cfg.Entries > 0 {
		rep.Memory = MemoryPerEntry(cfg.Entries)
	}
	if cfg.RunTrueRuns > 0 {
		// Timed from a small helper process: a child's peak RSS starts
		// from its parent's when the parent forks it, and this process
		// has grown by now.
		for _, cred := range [][]string{{"--dev"}, {"--service-account-json", keyPath}} {
			p, err := StartProc(cfg.Exe, append([]string{"bench", "--time-run", strconv.Itoa(cfg.RunTrueRuns), "--"}, cred...), sessionEnv(dir))
			if err != nil {
				return rep, err
			}
			p.Stop()
			res := &RunTrueResult{}
			if err := json.Unmarshal([]byte(p.Line), res); err != nil {
				return rep, fmt.Errorf("bench: timing run -- true: %q", p.Line)
			}
			if cred[0] == "--dev" {
				rep.RunTrue = res
			} else {
				rep.RunTrueSA = res
			}
		}
	}
	return rep, nil
}

type runner struct {
	cfg     Config
	fg      *fakegoogle.Server
	dir     string
	keyPath string
}

func (b *runner) progress(format string, args ...any) {
	fmt.Fprintf(b.cfg.Progress, "\r\033[K"+format, args...)
}

// profiled adds to env the variable that makes a credbroker process
// write its CPU profile to ProfileDir/name, when profiles are asked for.
func (b *runner) profiled(env []string, name string) []string {
	if b.cfg.ProfileDir == "" || name == "" {
		return env
	}
	return append(slices.Clip(env), ProfileEnv+"="+filepath.Join(b.cfg.ProfileDir, name))
}

// ProfileEnv is the variable cmd/credbroker reads for a CPU profile of
// its process.
const ProfileEnv = "CREDBROKER_CPUPROFILE"

func (b *runner) wanted(name string) bool {
	return len(b.cfg.Frontends) == 0 || slices.Contains(b.cfg.Frontends, name)
}

// startSession runs `credbroker run` with the service-account key of
// the fake Google endpoint and a probe child, and returns the process
// (the broker, whose CPU is measured) and its front-ends.
func (b *runner) startSession(profile string) (*Proc, []Target, error) {
	sdir, err := os.MkdirTemp(b.dir, "session-")
	if err != nil {
		return nil, nil, err
	}
	p, err := StartProc(b.cfg.Exe,
		[]string{"run", "--service-account-json", b.keyPath, "--log-level", "error", "--", b.cfg.Exe, "bench", "--probe"},
		b.profiled(sessionEnv(sdir), profile))
	if err != nil {
		return nil, nil, err
	}
	var env []string
	if err := json.Unmarshal([]byte(p.Line), &env); err != nil {
		p.Stop()
		return nil, nil, fmt.Errorf("bench: the session's probe printed %q", p.Line)
	}
	ep, err := EndpointsFromEnv(env)
	if err != nil {
		p.Stop()
		return nil, nil, err
	}
	return p, ep.Targets(nil), nil
}

func (b *runner) throughput(ctx context.Context) ([]ThroughputRow, error) {
	b.fg.SetTokenLifetime(time.Hour)
	b.fg.SetFault(fakegoogle.Fault{})
	sess, targets, err := b.startSession("broker.prof")
	if err != nil {
		return nil, err
	}
	defer sess.Stop()
	var rows []ThroughputRow
	for _, t := range targets {
		if !b.wanted(t.Name) {
			continue
		}
		sctx, cancel := waitCtx()
		sample, header, err := t.Sample(sctx)
		cancel()
		if err != nil {
			return rows, fmt.Errorf("bench: %s: %w", t.Name, err)
		}
		kind := "http"
		if !t.IsHTTP() {
			kind = "tcp"
		}
		// The baseline answers the very bytes the front-end answered, so
		// clients parse the same thing.
		bodyFile := filepath.Join(b.dir, t.Name+".answer")
		if err := os.WriteFile(bodyFile, sample, 0o600); err != nil {
			return rows, err
		}
		if err := writeHeader(bodyFile, header); err != nil {
			return rows, err
		}
		base, err := StartProc(b.cfg.Exe, []string{"bench", "--serve-baseline", kind + ":" + bodyFile},
			b.profiled(os.Environ(), "baseline-"+t.Name+".prof"))
		if err != nil {
			return rows, err
		}
		bt := t.WithAddr(base.Line)
		for _, c := range b.cfg.Concurrency {
			row := ThroughputRow{Frontend: t.Name, Concurrency: c, AnswerBytes: len(sample)}
			var cpuBase, cpuOurs time.Duration
			row.Base, row.Ours, cpuBase, cpuOurs = b.measurePair(ctx,
				side{bt, base.Pid, "baseline " + t.Name}, side{t, sess.Pid, t.Name}, c)
			row.BaseCPU = perRequest(cpuBase, row.Base.Requests)
			row.OursCPU = perRequest(cpuOurs, row.Ours.Requests)
			row.RPSRatio = ratio(row.Ours.RPS, row.Base.RPS)
			row.CPURatio = ratio(float64(row.OursCPU), float64(row.BaseCPU))
			row.P99Ratio = ratio(float64(row.Ours.P99), float64(row.Base.P99))
			rows = append(rows, row)
		}
		base.Stop()
	}
	b.progress("")
	return rows, nil
}

// side is one server of a comparison: what to load and whose CPU to count.
type side struct {
	t     Target
	pid   int
	label string
}

// measurePair loads the baseline and the broker in turns, Rounds times
// in all (baseline, broker, broker, baseline, ...), each for its share
// of Duration, and returns each side's merged result and CPU time.
// Alternating cancels out what drifts over a run (other load on the
// machine, CPU frequency, a GC of the load generator) instead of
// charging all of it to whichever side ran last.
func (b *runner) measurePair(ctx context.Context, base, ours side, c int) (Result, Result, time.Duration, time.Duration) {
	rounds := max(b.cfg.Rounds, 1)
	d := b.cfg.Duration / time.Duration(rounds)
	warm := min(d/5, time.Second)
	var raw [2]rawResult
	var cpu [2]time.Duration
	sides := [2]side{base, ours}
	for i := range rounds {
		// ABBA order: each side runs first as often as second.
		first := (i/2 + i) % 2
		for _, j := range []int{first, 1 - first} {
			r, used := b.measure(ctx, sides[j], c, d, warm)
			raw[j].merge(r)
			cpu[j] += used
		}
	}
	return raw[0].summarize(), raw[1].summarize(), cpu[0], cpu[1]
}

// measure loads s.t at c connections for d after a warm-up that opens
// the connections, and returns the result with the CPU time process
// s.pid used meanwhile.
func (b *runner) measure(ctx context.Context, s side, c int, d, warm time.Duration) (rawResult, time.Duration) {
	loadRaw(ctx, s.t, c, warm, nil)
	before, _ := CPUTime(s.pid)
	r := loadRaw(ctx, s.t, c, d, func(n int) {
		b.progress("%-20s c=%-4d %8d requests", s.label, c, n)
	})
	after, _ := CPUTime(s.pid)
	return r, after - before
}

func perRequest(cpu time.Duration, n int) time.Duration {
	if n == 0 {
		return 0
	}
	return cpu / time.Duration(n)
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// coldBurst sends BurstSize requests at once, each on its own
// connection, for a scope set never asked for, on each front-end whose
// clients choose scopes, and counts the upstream mints.
func (b *runner) coldBurst(ctx context.Context) ([]BurstRow, error) {
	b.fg.SetTokenLifetime(time.Hour)
	b.fg.SetFault(fakegoogle.Fault{Latency: 300 * time.Millisecond})
	defer b.fg.SetFault(fakegoogle.Fault{})
	sess, _, err := b.startSession("")
	if err != nil {
		return nil, err
	}
	defer sess.Stop()
	var env []string
	_ = json.Unmarshal([]byte(sess.Line), &env)
	ep, _ := EndpointsFromEnv(env)
	var rows []BurstRow
	for _, name := range []string{LocalAuth, Metadata} {
		if !b.wanted(name) {
			continue
		}
		scope := fmt.Sprintf("https://www.googleapis.com/auth/bench-burst-%s-%d", name, time.Now().UnixNano())
		t, ok := ByName(ep.Targets([]string{scope}), name)
		if !ok {
			continue
		}
		before := len(b.fg.Mints())
		row := BurstRow{Frontend: name, Requests: b.cfg.BurstSize}
		var mu sync.Mutex
		var wg sync.WaitGroup
		gate := make(chan struct{})
		start := time.Now()
		for range b.cfg.BurstSize {
			wg.Go(func() {
				hc := NewClient(1)
				defer hc.CloseIdleConnections()
				<-gate
				rctx, cancel := context.WithTimeout(ctx, time.Minute)
				defer cancel()
				if err := t.hit(rctx, hc); err != nil {
					mu.Lock()
					row.Errors++
					mu.Unlock()
				}
			})
		}
		b.progress("cold burst %s: %d requests", name, b.cfg.BurstSize)
		start = time.Now()
		close(gate)
		wg.Wait()
		row.Wall = time.Since(start)
		for _, m := range b.fg.Mints()[before:] {
			if slices.Contains(m.Scopes, scope) {
				row.Mints++
			}
		}
		rows = append(rows, row)
	}
	b.progress("")
	return rows, nil
}

// storm loads each front-end with 4 connections while the upstream's
// tokens live StormLifetime and take StormLatency to mint.
func (b *runner) storm(ctx context.Context) ([]StormRow, *Result, error) {
	b.fg.SetTokenLifetime(b.cfg.StormLifetime)
	b.fg.SetFault(fakegoogle.Fault{Latency: b.cfg.StormLatency})
	defer b.fg.SetFault(fakegoogle.Fault{})
	defer b.fg.SetTokenLifetime(time.Hour)
	var rows []StormRow
	var floor *Result
	for _, name := range Frontends {
		if !b.wanted(name) {
			continue
		}
		// A session per front-end, so each row counts the mints of its
		// own key.
		sess, targets, err := b.startSession("")
		if err != nil {
			return rows, nil, err
		}
		t, _ := ByName(targets, name)
		before := len(b.fg.Mints())
		r := Load(ctx, t, 4, b.cfg.StormDuration, func(n int) {
			b.progress("expiry storm %-10s %8d requests", name, n)
		})
		rows = append(rows, StormRow{Frontend: name, Result: r, Mints: len(b.fg.Mints()) - before})
		if floor == nil && t.IsHTTP() {
			floor = &Result{}
			*floor, err = b.floor(ctx, t)
		}
		sess.Stop()
		if err != nil {
			return rows, nil, err
		}
	}
	b.progress("")
	return rows, floor, nil
}

// floor runs the storm's load against a bare server answering what t
// answers.
func (b *runner) floor(ctx context.Context, t Target) (Result, error) {
	sctx, cancel := waitCtx()
	defer cancel()
	sample, header, err := t.Sample(sctx)
	if err != nil {
		return Result{}, err
	}
	bodyFile := filepath.Join(b.dir, "storm.answer")
	if err := os.WriteFile(bodyFile, sample, 0o600); err != nil {
		return Result{}, err
	}
	if err := writeHeader(bodyFile, header); err != nil {
		return Result{}, err
	}
	base, err := StartProc(b.cfg.Exe, []string{"bench", "--serve-baseline", "http:" + bodyFile}, os.Environ())
	if err != nil {
		return Result{}, err
	}
	defer base.Stop()
	return Load(ctx, t.WithAddr(base.Line), 4, b.cfg.StormDuration, func(n int) {
		b.progress("expiry storm baseline %8d requests", n)
	}), nil
}

// constSource mints tokens instantly for the memory measurement; their
// values have the length of a real Google access token.
type constSource struct{ n int }

func (s *constSource) AccessToken(context.Context, []string, time.Duration) (broker.Token, error) {
	s.n++
	v := fmt.Sprintf("ya29.%0*d", tokenLen-5, s.n)
	return broker.Token{Value: v, Expiry: time.Now().Add(time.Hour)}, nil
}
func (s *constSource) IDToken(context.Context, string, time.Duration) (broker.Token, error) {
	return broker.Token{}, broker.Fatalf("no ID tokens")
}
func (s *constSource) Email() string { return "bench@bench-project.iam.gserviceaccount.com" }

// tokenLen is the length of a typical Google access token.
const tokenLen = 180

// MemoryPerEntry fills a broker's cache with n access tokens for n
// distinct two-scope sets and returns the heap growth per entry.
func MemoryPerEntry(n int) *MemoryResult {
	b := broker.New(broker.Options{CacheSize: n})
	defer b.Close()
	_ = b.AddAccount("task", &constSource{})
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	before := heap()
	ctx := context.Background()
	for i := range n {
		scopes := []string{"https://www.googleapis.com/auth/bench-" + strconv.Itoa(i), "https://www.googleapis.com/auth/userinfo.email"}
		_, _ = b.AccessToken(ctx, "task", scopes, time.Minute)
	}
	after := heap()
	runtime.KeepAlive(b)
	return &MemoryResult{Entries: n, BytesPerEntry: float64(int64(after)-int64(before)) / float64(n), TokenBytes: tokenLen}
}

// RunTrue times `credbroker run CRED -- true` runs times and reports the
// median and worst wall time and the peak resident set of the broker.
// Call it from a small process (see Run).
func RunTrue(exe string, runs int, cred []string) (*RunTrueResult, error) {
	res := &RunTrueResult{Runs: runs, Source: "dev"}
	if len(cred) > 0 && cred[0] != "--dev" {
		res.Source = "service-account"
	}
	var walls, starts []time.Duration
	for range runs {
		start, err := timed(exec.Command(exe, "bench", "--start-only"))
		if err != nil {
			return nil, fmt.Errorf("bench: credbroker bench --start-only: %w", err)
		}
		starts = append(starts, start)
		args := append(append([]string{"run"}, cred...), "--log-level", "error", "--", "true")
		cmd := exec.Command(exe, args...)
		wall, err := timed(cmd)
		if err != nil {
			return nil, fmt.Errorf("bench: credbroker run -- true: %w", err)
		}
		walls = append(walls, wall)
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			res.PeakRSSKiB = max(res.PeakRSSKiB, int64(ru.Maxrss))
		}
	}
	slices.Sort(walls)
	slices.Sort(starts)
	res.WallMedian, res.WallMax = walls[len(walls)/2], walls[len(walls)-1]
	res.StartMedian = starts[len(starts)/2]
	return res, nil
}

// timed runs cmd and returns its wall time.
func timed(cmd *exec.Cmd) (time.Duration, error) {
	begin := time.Now()
	err := cmd.Run()
	return time.Since(begin), err
}

// writeHeader saves the headers a baseline answering bodyFile sends, as
// JSON beside it (see ReadHeader).
func writeHeader(bodyFile string, h http.Header) error {
	data, err := json.Marshal(h)
	if err != nil {
		return err
	}
	return os.WriteFile(bodyFile+".header", data, 0o600)
}

// ReadHeader returns the headers saved beside a baseline's answer file;
// none when there is no such file (devshell).
func ReadHeader(bodyFile string) (http.Header, error) {
	data, err := os.ReadFile(bodyFile + ".header")
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var h http.Header
	err = json.Unmarshal(data, &h)
	return h, err
}

// buildSettings names the build settings of this binary that change what
// is measured.
func buildSettings() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	var out []string
	for _, st := range bi.Settings {
		switch st.Key {
		case "CGO_ENABLED", "-tags", "-ldflags", "-race":
			out = append(out, st.Key+"="+st.Value)
		}
	}
	return strings.Join(out, " ")
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
}

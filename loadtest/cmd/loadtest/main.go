// Command loadtest offers fixed-rate steps of payment traffic to a payments
// API (by default the one `make run` serves) and writes result.json,
// result.md and latency.png. See loadtest/README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/payments-api/payments/loadtest"
)

// outRootDefault is where runs are written, one folder per run.
const outRootDefault = "loadtest-results"

// gcPercentDefault replaces GOGC's 100 unless GOGC is set: the live heap is
// small (histograms, a ring of payment IDs), so collecting eight times less
// often costs a few MB and gives back CPU, and GC pauses, that would
// otherwise show in the latencies measured.
const gcPercentDefault = 800

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercentDefault)
	}
	def := loadtest.DefaultConfig()
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	var (
		base             = fs.String("base", def.BaseURL, "base URL of the API; only loopback hosts unless -allow-remote")
		allowRemote      = fs.Bool("allow-remote", false, "allow a base URL whose host is not a loopback address")
		adminToken       = fs.String("admin-token", "", "admin token (default $"+loadtest.AdminTokenEnv+", else the content of -admin-token-file)")
		adminTokenFile   = fs.String("admin-token-file", loadtest.AdminTokenFileDefault, "file holding the admin token, read when neither -admin-token nor $"+loadtest.AdminTokenEnv+" is set")
		region           = fs.String("region", def.Region, "region of the tenants")
		tenants          = fs.Int("tenants", def.Tenants, "tenants to create; traffic goes round-robin over them")
		setupConcurrency = fs.Int("setup-concurrency", def.SetupConcurrency, "tenants created at once")
		steps            = fs.String("steps", loadtest.StepsDefault, "comma-separated RATE:DURATION steps, requests per second")
		warmup           = fs.Duration("warmup", def.Warmup, "unreported warm-up at the first step's rate; 0 for none")
		mix              = fs.String("mix", loadtest.MixDefault, "flow weights, such as create=6,manual_capture=2,refund=1,get=1")
		timeout          = fs.Duration("timeout", def.Timeout, "timeout of one request")
		workersMax       = fs.Int("workers-max", def.WorkersMax, "most requests in flight (attacker workers and connections)")
		successMin       = fs.Float64("success-min", def.SuccessMin, "success ratio (2xx/all) a step needs to pass")
		p99Max           = fs.Duration("p99-max", def.P99Max, "p99 latency a step must stay under to pass")
		stopAfter        = fs.Int("stop-after-failures", def.StopAfterFailures, "stop after this many failing steps in a row; 0 runs every step")
		serverPID        = fs.Int("server-pid", 0, "pid of the server process, to report its CPU per request from /proc/<pid>/stat")
		out              = fs.String("out", "", "output folder (default "+outRootDefault+"/<UTC timestamp>)")
		quiet            = fs.Bool("quiet", false, "log only warnings and errors")
		cpuProfile       = fs.String("cpuprofile", "", "write the generator's CPU profile to this file, to see where its own CPU goes")
		riskRules        = fs.Bool("risk-rules", false, "give every tenant a velocity and an impossible_travel rule and send payments with a location and a customer, to measure the rules' cost")
	)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: loadtest [flags]\n\nOffers fixed-rate steps of payment traffic to the API and writes result.json, result.md and latency.png.\n\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}

	cfg := def
	var err error
	if cfg.Steps, err = loadtest.ParseSteps(*steps); err != nil {
		return err
	}
	if cfg.Mix, err = loadtest.ParseMix(*mix); err != nil {
		return err
	}
	if _, err := loadtest.CheckBaseURL(*base, *allowRemote); err != nil {
		return err
	}
	if cfg.AdminToken, err = loadtest.ResolveAdminToken(*adminToken, *adminTokenFile); err != nil {
		return err
	}
	cfg.BaseURL, cfg.AllowRemote, cfg.Region = *base, *allowRemote, *region
	cfg.Tenants, cfg.SetupConcurrency, cfg.Warmup = *tenants, *setupConcurrency, *warmup
	cfg.Timeout, cfg.WorkersMax, cfg.SuccessMin, cfg.P99Max = *timeout, *workersMax, *successMin, *p99Max
	cfg.StopAfterFailures, cfg.ServerPID = *stopAfter, *serverPID
	cfg.RiskRules = *riskRules
	level := slog.LevelInfo
	if *quiet {
		level = slog.LevelWarn
	}
	cfg.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	dir := *out
	if dir == "" {
		dir = filepath.Join(outRootDefault, time.Now().UTC().Format("20060102T150405Z"))
	}

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := loadtest.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if err := loadtest.WriteOutputs(dir, rep); err != nil {
		return err
	}
	fmt.Print(loadtest.Markdown(rep))
	fmt.Printf("\nResults in %s (%s, %s, %s).\n", dir, loadtest.FileJSON, loadtest.FileMarkdown, loadtest.FilePlot)
	return nil
}

package loadtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// Config is one run's settings; the command fills it from flags.
type Config struct {
	BaseURL           string // checked with CheckBaseURL
	AllowRemote       bool
	AdminToken        string
	Region            string
	Tenants           int
	SetupConcurrency  int
	Steps             []Step
	Warmup            time.Duration // at the first step's rate, not reported
	Mix               Mix
	Timeout           time.Duration // per request
	WorkersMax        int
	SuccessMin        float64
	P99Max            time.Duration
	StopAfterFailures int // 0 runs every step
	ServerPID         int // 0 does not measure the server's CPU
	// RiskRules gives every tenant two location risk rules and sends
	// located payments (loadtest/risk.go).
	RiskRules bool
	Log       *slog.Logger
}

// DefaultConfig is the command's defaults.
func DefaultConfig() Config {
	steps, err := ParseSteps(StepsDefault)
	if err != nil {
		panic(err)
	}
	mix, err := ParseMix(MixDefault)
	if err != nil {
		panic(err)
	}
	return Config{
		BaseURL: BaseURLDefault, Region: RegionDefault, Tenants: TenantsDefault,
		SetupConcurrency: SetupConcurrencyDefault, Steps: steps, Warmup: WarmupDefault, Mix: mix,
		Timeout: TimeoutDefault, WorkersMax: WorkersMaxDefault, SuccessMin: SuccessMinDefault,
		P99Max: P99MaxDefault, StopAfterFailures: StopAfterFailuresDefault,
	}
}

func (c *Config) validate() error {
	switch {
	case c.Tenants < 1 || c.Tenants > TenantsMax:
		return fmt.Errorf("tenants: %d, want 1 to %d", c.Tenants, TenantsMax)
	case c.SetupConcurrency < 1:
		return fmt.Errorf("setup concurrency: %d, want at least 1", c.SetupConcurrency)
	case len(c.Steps) == 0:
		return errors.New("steps: none")
	case c.Mix.Total() == 0:
		return errors.New("mix: every weight is 0")
	case c.Timeout <= 0 || c.Timeout > time.Minute:
		return fmt.Errorf("timeout: %s, want more than 0 and at most 1m", c.Timeout)
	case c.WorkersMax < 1:
		return fmt.Errorf("workers max: %d, want at least 1", c.WorkersMax)
	case c.Warmup < 0 || c.Warmup > StepDurationMax:
		return fmt.Errorf("warmup: %s, want 0 to %s", c.Warmup, StepDurationMax)
	case c.SuccessMin < 0 || c.SuccessMin > 1:
		return fmt.Errorf("success min: %v, want 0 to 1", c.SuccessMin)
	case c.P99Max <= 0:
		return fmt.Errorf("p99 max: %s, want more than 0", c.P99Max)
	case c.StopAfterFailures < 0:
		return fmt.Errorf("stop after failures: %d, want 0 or more", c.StopAfterFailures)
	case c.ServerPID < 0:
		return fmt.Errorf("server pid: %d", c.ServerPID)
	case c.AdminToken == "":
		return errors.New("admin token: empty")
	}
	return nil
}

// Reading a response body beyond this is pointless: only a payment's id is
// needed.
const responseBodyMax = 64 << 10

// controlTimeout bounds a /metrics scrape.
const controlTimeout = 5 * time.Second

// Run creates the tenants, offers each step and answers the report. When
// ctx ends, the step under way stops (its requests in flight finish within
// the timeout) and the report so far is answered with StopReason set.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	base, err := CheckBaseURL(cfg.BaseURL, cfg.AllowRemote)
	if err != nil {
		return nil, err
	}
	baseText := base.String()
	rep := &Report{
		StartedAt: time.Now().UTC(), BaseURL: baseText, Tenants: cfg.Tenants, Mix: cfg.Mix.String(),
		WarmupS: cfg.Warmup.Seconds(), TimeoutMS: ms(cfg.Timeout), WorkersMax: cfg.WorkersMax,
		SuccessMin: cfg.SuccessMin, P99MaxMS: ms(cfg.P99Max), ServerPID: cfg.ServerPID, RiskRules: cfg.RiskRules,
		GoVersion: runtime.Version(), GOMAXPROCS: runtime.GOMAXPROCS(0), NumCPU: runtime.NumCPU(),
		StepsPlanned: len(cfg.Steps), Steps: []StepResult{},
	}

	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, fmt.Errorf("random run id: %w", err)
	}
	runID := hex.EncodeToString(rnd[:])

	control := newAttackClient(base, cfg.Timeout, cfg.SetupConcurrency+2)
	setupStart := time.Now()
	log.Info("creating tenants", "tenants", cfg.Tenants, "concurrency", cfg.SetupConcurrency, "base", baseText)
	tenants, err := CreateTenants(ctx, control, baseText, cfg.AdminToken, cfg.Region, "loadtest-"+runID, cfg.Tenants, cfg.SetupConcurrency)
	if err != nil {
		return nil, err
	}
	log.Info("tenants created", "tenants", len(tenants), "took", time.Since(setupStart).Round(time.Millisecond))

	eng := newEngine(baseText, tenants, cfg.Mix, "lt-"+runID+"-")
	if cfg.RiskRules {
		log.Info("creating risk rules", "tenants", len(tenants), "rules_per_tenant", len(riskRuleBodies))
		if err := CreateRiskRules(ctx, control, baseText, tenants); err != nil {
			return nil, err
		}
		eng.bodyCreate, eng.bodyCreateManual = bodyCreateLocated, bodyCreateManualLocated
	}
	client := newAttackClient(base, cfg.Timeout, cfg.WorkersMax)
	defer client.CloseIdleConnections()
	defer control.CloseIdleConnections()
	r := &runner{cfg: cfg, eng: eng, client: client, control: control, base: baseText, log: log}

	if cfg.Warmup > 0 {
		st := Step{Rate: cfg.Steps[0].Rate, Duration: cfg.Warmup}
		log.Info("warm-up", "rate", st.Rate, "duration", st.Duration)
		agg, _ := r.attack(ctx, st)
		log.Info("warm-up done", "requests", agg.all.requests, "ok", agg.all.ok)
	}

	_, metricsErr := scrapeTxn(ctx, control, baseText)
	rep.MetricsAvailable = metricsErr == nil
	if metricsErr != nil {
		log.Warn("no transaction counters; their columns stay empty", "err", metricsErr)
	}
	if cfg.ServerPID > 0 {
		if _, err := procCPU(cfg.ServerPID); err != nil {
			log.Warn("cannot read the server's CPU; its column stays empty", "err", err)
		} else {
			rep.ServerCPUMeasured = true
		}
	}

	failures := 0
	for i, st := range cfg.Steps {
		if ctx.Err() != nil {
			rep.StoppedEarly, rep.StopReason = true, "interrupted"
			break
		}
		res := r.step(ctx, i+1, st, rep.MetricsAvailable, rep.ServerCPUMeasured)
		res.Pass = res.Passes(cfg.SuccessMin, cfg.P99Max)
		rep.Steps = append(rep.Steps, res)
		log.Info("step done", "step", i+1, "offered_rps", st.Rate, "achieved_rps", res.AchievedRPS,
			"success", res.SuccessRatio, "p99_ms", res.LatencyMS.P99, "5xx", res.Status5xx, "429", res.Status429,
			"errors", res.Errors, "gen_cpu_us_per_req", res.GeneratorCPUUsPerRequest, "pass", res.Pass)
		if ctx.Err() != nil {
			rep.StoppedEarly, rep.StopReason = true, "interrupted"
			break
		}
		if res.Pass {
			failures = 0
			continue
		}
		failures++
		if cfg.StopAfterFailures > 0 && failures >= cfg.StopAfterFailures && i+1 < len(cfg.Steps) {
			rep.StoppedEarly = true
			rep.StopReason = fmt.Sprintf("%d failing steps in a row", failures)
			break
		}
	}
	rep.BestStep = SelectBest(rep.Steps)
	rep.FinishedAt = time.Now().UTC()
	return rep, nil
}

type runner struct {
	cfg     Config
	eng     *engine
	client  *http.Client
	control *http.Client
	base    string
	log     *slog.Logger
}

// attack offers one step and aggregates its results.
func (r *runner) attack(ctx context.Context, st Step) (*stepAgg, time.Duration) {
	agg := newStepAgg()
	workers := uint64(min(max(st.Rate/50, 16), r.cfg.WorkersMax))
	atk := vegeta.NewAttacker(
		vegeta.Client(r.client),
		vegeta.Workers(workers),
		vegeta.MaxWorkers(uint64(r.cfg.WorkersMax)),
		vegeta.MaxBody(responseBodyMax),
	)
	stop := context.AfterFunc(ctx, func() { atk.Stop() })
	defer stop()
	start := time.Now()
	for res := range atk.Attack(r.eng.target, vegeta.ConstantPacer{Freq: st.Rate, Per: time.Second}, st.Duration, "") {
		r.eng.observe(res, agg)
	}
	return agg, time.Since(start)
}

// step offers one step and measures around it: the server's counters and
// both processes' CPU.
func (r *runner) step(ctx context.Context, index int, st Step, metrics, serverCPU bool) StepResult {
	r.log.Info("step", "step", index, "rate", st.Rate, "duration", st.Duration)
	var before TxnCounters
	var metricsOK bool
	if metrics {
		sctx, cancel := context.WithTimeout(ctx, controlTimeout)
		c, err := scrapeTxn(sctx, r.control, r.base)
		cancel()
		before, metricsOK = c, err == nil
		if err != nil {
			r.log.Warn("scrape before step", "step", index, "err", err)
		}
	}
	var srv0 time.Duration
	if serverCPU {
		var err error
		if srv0, err = procCPU(r.cfg.ServerPID); err != nil {
			serverCPU = false
		}
	}
	cpu0, cpuErr := ownCPU()
	dropped0 := r.eng.dropped.Load()

	agg, elapsed := r.attack(ctx, st)

	cpu1, cpuErr1 := ownCPU()
	var srv1 time.Duration
	if serverCPU {
		var err error
		if srv1, err = procCPU(r.cfg.ServerPID); err != nil {
			serverCPU = false
		}
	}
	res := stepResultOf(index, st, agg, elapsed)
	res.FollowUpsDropped = r.eng.dropped.Load() - dropped0
	if n := agg.all.requests; n > 0 {
		if cpuErr == nil && cpuErr1 == nil {
			res.GeneratorCPUUsPerRequest = round3(float64(cpu1-cpu0) / float64(time.Microsecond) / float64(n))
		}
		if serverCPU {
			v := round3(float64(srv1-srv0) / float64(time.Microsecond) / float64(n))
			res.ServerCPUUsPerRequest = &v
		}
	}
	if metricsOK {
		// A fresh context: the counters are worth reading after an
		// interrupted step too.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), controlTimeout)
		after, err := scrapeTxn(sctx, r.control, r.base)
		cancel()
		if err != nil {
			r.log.Warn("scrape after step", "step", index, "err", err)
		} else {
			retries, total, exhausted := after.Retries-before.Retries, after.Total-before.Total, after.Exhausted-before.Exhausted
			res.TxnRetries, res.TxnTotal, res.TxnExhausted = &retries, &total, &exhausted
			ratio := 0.0
			if total > 0 {
				ratio = round6(retries / total)
			}
			res.TxnRetryRatio = &ratio
		}
	}
	if agg.unlabelled > 0 || agg.noID > 0 {
		r.log.Warn("results not understood", "step", index, "unlabelled", agg.unlabelled, "created_without_id", agg.noID)
	}
	return res
}

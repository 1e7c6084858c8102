package loadtest

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Report is a run's outcome, written as result.json.
type Report struct {
	StartedAt         time.Time    `json:"started_at"`
	FinishedAt        time.Time    `json:"finished_at"`
	BaseURL           string       `json:"base_url"`
	Tenants           int          `json:"tenants"`
	Mix               string       `json:"mix"`
	WarmupS           float64      `json:"warmup_s"`
	TimeoutMS         float64      `json:"timeout_ms"`
	WorkersMax        int          `json:"workers_max"`
	SuccessMin        float64      `json:"success_min"`
	P99MaxMS          float64      `json:"p99_max_ms"`
	ServerPID         int          `json:"server_pid,omitempty"`
	RiskRules         bool         `json:"risk_rules,omitempty"`
	GoVersion         string       `json:"go_version"`
	GOMAXPROCS        int          `json:"gomaxprocs"`
	NumCPU            int          `json:"num_cpu"`
	Steps             []StepResult `json:"steps"`
	BestStep          *BestStep    `json:"best_step"`
	StoppedEarly      bool         `json:"stopped_early"`
	StopReason        string       `json:"stop_reason,omitempty"`
	StepsPlanned      int          `json:"steps_planned"`
	MetricsAvailable  bool         `json:"metrics_available"`
	ServerCPUMeasured bool         `json:"server_cpu_measured"`
}

// BestStep names the highest-rate step that passed.
type BestStep struct {
	Index      int `json:"index"` // 1-based, as in the table
	OfferedRPS int `json:"offered_rps"`
}

// LatencyMS holds latency quantiles in milliseconds.
type LatencyMS struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

// OpResult is one operation's share of a step.
type OpResult struct {
	Requests    uint64    `json:"requests"`
	Status2xx   uint64    `json:"status_2xx"`
	Status429   uint64    `json:"status_429"`
	Status5xx   uint64    `json:"status_5xx"`
	StatusOther uint64    `json:"status_other"`
	Errors      uint64    `json:"errors"`
	LatencyMS   LatencyMS `json:"latency_ms"`
}

// StepResult is one step's outcome, a row of the table.
type StepResult struct {
	Index        int                 `json:"index"` // 1-based
	OfferedRPS   int                 `json:"offered_rps"`
	DurationS    float64             `json:"duration_s"`
	ElapsedS     float64             `json:"elapsed_s"` // until the last answer
	Requests     uint64              `json:"requests"`
	SentRPS      float64             `json:"sent_rps"`
	AchievedRPS  float64             `json:"achieved_rps"` // 2xx answers per elapsed second
	SuccessRatio float64             `json:"success_ratio"`
	LatencyMS    LatencyMS           `json:"latency_ms"`
	Status2xx    uint64              `json:"status_2xx"`
	Status429    uint64              `json:"status_429"`
	Status5xx    uint64              `json:"status_5xx"`
	StatusOther  uint64              `json:"status_other"` // non-2xx other than 429 and 5xx
	Errors       uint64              `json:"errors"`       // no answer: timeouts, connection errors
	Timeouts     uint64              `json:"timeouts"`
	StatusCounts map[string]uint64   `json:"status_counts"`
	ErrorSamples []string            `json:"error_samples,omitempty"`
	Ops          map[string]OpResult `json:"ops"`

	GeneratorCPUUsPerRequest float64  `json:"generator_cpu_us_per_request"`
	ServerCPUUsPerRequest    *float64 `json:"server_cpu_us_per_request"`

	TxnRetries    *float64 `json:"txn_retries"`     // delta of payments_txn_retries_total
	TxnTotal      *float64 `json:"txn_total"`       // delta of payments_txn_total
	TxnRetryRatio *float64 `json:"txn_retry_ratio"` // retries per transaction
	TxnExhausted  *float64 `json:"txn_exhausted"`   // delta of payments_txn_total{outcome="exhausted"}

	FollowUpsDropped uint64 `json:"follow_ups_dropped,omitempty"`
	Pass             bool   `json:"pass"`
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/float64(time.Millisecond)*1000) / 1000 }

func latencyOf(h *Histogram) LatencyMS {
	return LatencyMS{P50: ms(h.Quantile(0.50)), P90: ms(h.Quantile(0.90)), P99: ms(h.Quantile(0.99)), Max: ms(h.Max()), Mean: ms(h.Mean())}
}

// Passes reports whether a step meets the thresholds: success ratio at
// least successMin and p99 under p99Max.
func (s StepResult) Passes(successMin float64, p99Max time.Duration) bool {
	return s.Requests > 0 && s.SuccessRatio >= successMin && s.LatencyMS.P99 < ms(p99Max)
}

// SelectBest answers the passing step with the highest offered rate (the
// later one on a tie), or nil when none passed.
func SelectBest(steps []StepResult) *BestStep {
	var best *BestStep
	for _, s := range steps {
		if s.Pass && (best == nil || s.OfferedRPS >= best.OfferedRPS) {
			best = &BestStep{Index: s.Index, OfferedRPS: s.OfferedRPS}
		}
	}
	return best
}

// stepResultOf turns a step's aggregate into its row.
func stepResultOf(index int, st Step, agg *stepAgg, elapsed time.Duration) StepResult {
	a := &agg.all
	r := StepResult{
		Index: index, OfferedRPS: st.Rate, DurationS: st.Duration.Seconds(), ElapsedS: round3(elapsed.Seconds()),
		Requests: a.requests, Status2xx: a.ok, Status429: a.s429, Status5xx: a.s5xx, StatusOther: a.other,
		Errors: a.errors, Timeouts: agg.timeouts, LatencyMS: latencyOf(&a.hist),
		StatusCounts: map[string]uint64{}, ErrorSamples: agg.errSamples, Ops: map[string]OpResult{},
	}
	r.SentRPS = round3(float64(a.requests) / st.Duration.Seconds())
	if secs := max(elapsed, st.Duration).Seconds(); secs > 0 {
		r.AchievedRPS = round3(float64(a.ok) / secs)
	}
	if a.requests > 0 {
		r.SuccessRatio = round6(float64(a.ok) / float64(a.requests))
	}
	for code, n := range agg.status {
		r.StatusCounts[strconv.Itoa(code)] = n
	}
	if a.errors > 0 {
		r.StatusCounts["error"] = a.errors
	}
	for op := range opCount {
		o := &agg.ops[op]
		if o.requests == 0 {
			continue
		}
		r.Ops[op.String()] = OpResult{
			Requests: o.requests, Status2xx: o.ok, Status429: o.s429, Status5xx: o.s5xx,
			StatusOther: o.other, Errors: o.errors, LatencyMS: latencyOf(&o.hist),
		}
	}
	return r
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }
func round6(v float64) float64 { return math.Round(v*1e6) / 1e6 }

// Output file names inside a run's folder.
const (
	// FileJSON is the whole report.
	FileJSON = "result.json"
	// FileMarkdown is the table, one row per step.
	FileMarkdown = "result.md"
	// FilePlot is the latency plot.
	FilePlot = "latency.png"
)

// WriteOutputs writes result.json, result.md and latency.png into dir,
// creating it.
func WriteOutputs(dir string, r *Report) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, FileJSON), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, FileMarkdown), []byte(Markdown(r)), 0o644); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	if err := WritePlot(filepath.Join(dir, FilePlot), r); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	return nil
}

// Markdown renders the run as a heading, a table with one row per step and
// the best step.
func Markdown(r *Report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Load test %s\n\n", r.StartedAt.UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "Target %s, %d tenants, mix %s, timeout %s, pass: success >= %s%% and p99 < %s ms.\n\n",
		r.BaseURL, r.Tenants, r.Mix, time.Duration(r.TimeoutMS*float64(time.Millisecond)), fnum(r.SuccessMin*100, 2), fnum(r.P99MaxMS, 0))
	b.WriteString("| step | offered/s | sent/s | achieved/s | success % | p50 ms | p90 ms | p99 ms | max ms | 5xx | 429 | other | errors | gen CPU µs/req | server CPU µs/req | txn | retries | retries/txn | exhausted | pass |\n")
	b.WriteString("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---:|\n")
	for _, s := range r.Steps {
		pass := "no"
		if s.Pass {
			pass = "yes"
		}
		fmt.Fprintf(&b, "| %d | %d | %s | %s | %s | %s | %s | %s | %s | %d | %d | %d | %d | %s | %s | %s | %s | %s | %s | %s |\n",
			s.Index, s.OfferedRPS, fnum(s.SentRPS, 0), fnum(s.AchievedRPS, 0), fnum(s.SuccessRatio*100, 2),
			fnum(s.LatencyMS.P50, 1), fnum(s.LatencyMS.P90, 1), fnum(s.LatencyMS.P99, 1), fnum(s.LatencyMS.Max, 1),
			s.Status5xx, s.Status429, s.StatusOther, s.Errors,
			fnum(s.GeneratorCPUUsPerRequest, 1), optNum(s.ServerCPUUsPerRequest, 0),
			optNum(s.TxnTotal, 0), optNum(s.TxnRetries, 0), optNum(s.TxnRetryRatio, 4), optNum(s.TxnExhausted, 0), pass)
	}
	b.WriteString("\n")
	if r.BestStep != nil {
		fmt.Fprintf(&b, "Best step: %d (%d requests/s offered).\n", r.BestStep.Index, r.BestStep.OfferedRPS)
	} else {
		b.WriteString("Best step: none passed.\n")
	}
	if r.StoppedEarly {
		fmt.Fprintf(&b, "Stopped after step %d of %d: %s.\n", len(r.Steps), r.StepsPlanned, r.StopReason)
	}
	if codes := otherCodes(r.Steps); codes != "" {
		fmt.Fprintf(&b, "Answers by status over all steps: %s.\n", codes)
	}
	return b.String()
}

func otherCodes(steps []StepResult) string {
	sum := map[string]uint64{}
	for _, s := range steps {
		for c, n := range s.StatusCounts {
			sum[c] += n
		}
	}
	keys := make([]string, 0, len(sum))
	for k := range sum {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s: %d", k, sum[k]))
	}
	return strings.Join(parts, ", ")
}

func fnum(v float64, prec int) string { return strconv.FormatFloat(v, 'f', prec, 64) }

func optNum(v *float64, prec int) string {
	if v == nil {
		return "-"
	}
	return fnum(*v, prec)
}

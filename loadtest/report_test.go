package loadtest

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func step(index, rate int, success, p99 float64) StepResult {
	s := StepResult{Index: index, OfferedRPS: rate, Requests: 100, SuccessRatio: success, LatencyMS: LatencyMS{P50: p99 / 4, P99: p99}}
	s.Pass = s.Passes(0.999, 200*time.Millisecond)
	return s
}

func TestPassesAndSelectBest(t *testing.T) {
	t.Parallel()
	if !step(1, 100, 1, 199.9).Pass || step(1, 100, 0.9989, 10).Pass || step(1, 100, 1, 200).Pass {
		t.Error("Passes does not apply success >= 0.999 and p99 < 200 ms")
	}
	if (StepResult{SuccessRatio: 1}).Passes(0.999, time.Second) {
		t.Error("a step without requests passes")
	}
	for name, c := range map[string]struct {
		steps []StepResult
		want  *BestStep
	}{
		"none":          {nil, nil},
		"all fail":      {[]StepResult{step(1, 250, 0.5, 10), step(2, 500, 1, 900)}, nil},
		"highest rate":  {[]StepResult{step(1, 250, 1, 10), step(2, 500, 1, 20), step(3, 1000, 0.99, 30), step(4, 2000, 1, 300)}, &BestStep{2, 500}},
		"not the last":  {[]StepResult{step(1, 4000, 1, 10), step(2, 250, 1, 5)}, &BestStep{1, 4000}},
		"recovers":      {[]StepResult{step(1, 250, 1, 10), step(2, 500, 0.5, 10), step(3, 1000, 1, 10)}, &BestStep{3, 1000}},
		"tie goes late": {[]StepResult{step(1, 500, 1, 10), step(2, 500, 1, 10)}, &BestStep{2, 500}},
	} {
		got := SelectBest(c.steps)
		if (got == nil) != (c.want == nil) || got != nil && *got != *c.want {
			t.Errorf("%s: SelectBest = %+v, want %+v", name, got, c.want)
		}
	}
}

func sampleReport() *Report {
	retries, total, ratio, exhausted, srv := 5.0, 1000.0, 0.005, 1.0, 321.5
	s1 := step(1, 250, 1, 12.5)
	s1.SentRPS, s1.AchievedRPS, s1.Status2xx, s1.GeneratorCPUUsPerRequest = 250, 249.5, 100, 42.25
	s1.StatusCounts = map[string]uint64{"201": 100}
	s1.TxnRetries, s1.TxnTotal, s1.TxnRetryRatio, s1.TxnExhausted, s1.ServerCPUUsPerRequest = &retries, &total, &ratio, &exhausted, &srv
	s2 := step(2, 500, 0.9, 450)
	s2.Status5xx, s2.Status429, s2.StatusOther, s2.Errors = 4, 3, 2, 1
	s2.StatusCounts = map[string]uint64{"201": 90, "500": 4, "429": 3, "409": 2, "error": 1}
	steps := []StepResult{s1, s2}
	return &Report{
		StartedAt: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), BaseURL: "http://127.0.0.1:8080", Tenants: 20,
		Mix: "create=1", TimeoutMS: 10000, SuccessMin: 0.999, P99MaxMS: 200, Steps: steps,
		BestStep: SelectBest(steps), StoppedEarly: true, StopReason: "2 failing steps in a row", StepsPlanned: 5,
	}
}

func TestMarkdown(t *testing.T) {
	t.Parallel()
	md := Markdown(sampleReport())
	lines := strings.Split(md, "\n")
	var rows []string
	for _, l := range lines {
		if strings.HasPrefix(l, "| ") {
			rows = append(rows, l)
		}
	}
	if len(rows) != 3 {
		t.Fatalf("%d table rows, want a header and 2 steps:\n%s", len(rows), md)
	}
	header := strings.Count(rows[0], "|")
	for _, r := range rows {
		if strings.Count(r, "|") != header {
			t.Errorf("row %q has %d cells' bars, header %d", r, strings.Count(r, "|"), header)
		}
	}
	for _, want := range []string{
		"| 1 | 250 | 250 | 250 | 100.00 | 3.1 | 0.0 | 12.5 | 0.0 | 0 | 0 | 0 | 0 | 42.2 | 322 | 1000 | 5 | 0.0050 | 1 | yes |",
		"| 2 | 500 | 0 | 0 | 90.00 | 112.5 | 0.0 | 450.0 | 0.0 | 4 | 3 | 2 | 1 | 0.0 | - | - | - | - | - | no |",
		"Best step: 1 (250 requests/s offered).",
		"Stopped after step 2 of 5: 2 failing steps in a row.",
		"201: 190, 409: 2, 429: 3, 500: 4, error: 1",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("Markdown lacks %q:\n%s", want, md)
		}
	}
	rep := sampleReport()
	rep.Steps[0].Pass = false
	rep.BestStep = SelectBest(rep.Steps)
	if md := Markdown(rep); !strings.Contains(md, "Best step: none passed.") {
		t.Errorf("Markdown without a best step:\n%s", md)
	}
}

func TestWriteOutputs(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "run", "20250102T030405Z")
	rep := sampleReport()
	if err := WriteOutputs(dir, rep); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, FileJSON))
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	best, _ := back["best_step"].(map[string]any)
	if best["offered_rps"] != 250.0 || best["index"] != 1.0 {
		t.Errorf("best_step = %v", back["best_step"])
	}
	steps, _ := back["steps"].([]any)
	if len(steps) != 2 {
		t.Fatalf("steps = %v", back["steps"])
	}
	s1 := steps[0].(map[string]any)
	for k, want := range map[string]any{"generator_cpu_us_per_request": 42.25, "server_cpu_us_per_request": 321.5, "txn_retries": 5.0, "txn_retry_ratio": 0.005, "txn_exhausted": 1.0, "offered_rps": 250.0, "pass": true} {
		if s1[k] != want {
			t.Errorf("step 1 %s = %v, want %v", k, s1[k], want)
		}
	}
	if lat := s1["latency_ms"].(map[string]any); lat["p99"] != 12.5 {
		t.Errorf("step 1 latency_ms = %v", lat)
	}
	if s2 := steps[1].(map[string]any); s2["txn_retries"] != nil || s2["status_5xx"] != 4.0 {
		t.Errorf("step 2 = %v, want txn_retries null and 4 5xx", s2)
	}
	md, err := os.ReadFile(filepath.Join(dir, FileMarkdown))
	if err != nil || string(md) != Markdown(rep) {
		t.Errorf("result.md differs from Markdown (%v)", err)
	}
	png, err := os.ReadFile(filepath.Join(dir, FilePlot))
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) || len(png) < 1000 {
		t.Errorf("latency.png is not a PNG (%d bytes, %v)", len(png), err)
	}
}

func TestWritePlotEdgeCases(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for name, steps := range map[string][]StepResult{
		"no steps":    nil,
		"one step":    {step(1, 100, 1, 5)},
		"zero values": {{Index: 1, OfferedRPS: 100, Requests: 1}, {Index: 2, OfferedRPS: 200}},
	} {
		if err := WritePlot(filepath.Join(dir, name+".png"), &Report{P99MaxMS: 200, Steps: steps}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

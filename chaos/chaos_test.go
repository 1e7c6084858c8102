package chaos

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var (
	flagDuration = flag.Duration("chaos.duration", 30*time.Second, "how long faults are injected (make test: the short profile; make chaos: 10m)")
	flagSeed     = flag.Uint64("chaos.seed", 0, "seed of the fault schedule and the clients (0: from the clock; the seed is printed, pass it to replay)")
	flagClients  = flag.Int("chaos.clients", 16, "concurrent merchant clients")
	flagStrict   = flag.Bool("chaos.strict", false, "count 5xx from serialization attempts exhausted as violations too (make chaos sets it)")
	flagReport   = flag.String("chaos.report", "", "also write the table to this file")
	flagLogs     = flag.String("chaos.logs", "", "also write each process's log into this folder")
	flagHistory  = flag.String("chaos.history", "", "also write the history (every operation and attempt) to this file as JSON")
)

// TestChaos is the fault-injection run: see the package doc. The short
// profile of `make test` injects every fault kind once; `make chaos` runs
// it for 10 minutes.
func TestChaos(t *testing.T) {
	seed := *flagSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	// Printed first, so that a run that dies still names its seed.
	t.Logf("chaos seed %d (replay: make chaos CHAOS_SEED=%d CHAOS_DURATION=%s)", seed, seed, *flagDuration)
	cfg := Config{
		Seed: seed, Duration: *flagDuration, Clients: *flagClients,
		// The short profile of make test: every kind once, back to back.
		Profile: Profile{LengthMin: 1 * time.Second, LengthMax: 3 * time.Second, GapMin: 500 * time.Millisecond, GapMax: 2 * time.Second},
		WarmUp:  8 * time.Second, Tail: 10 * time.Second, Grace: 10 * time.Second, GiveUpAfter: 90 * time.Second, DrainMax: 150 * time.Second,
	}
	if *flagDuration > 5*time.Minute {
		cfg.Profile = Profile{LengthMin: 2 * time.Second, LengthMax: 10 * time.Second, GapMin: 3 * time.Second, GapMax: 12 * time.Second}
	}
	cfg.Strict5xx = *flagStrict
	rep := Run(t, cfg)
	table := rep.Table()
	t.Log("\n" + table)
	if *flagReport != "" {
		if err := os.WriteFile(*flagReport, []byte(table), 0o644); err != nil {
			t.Error(err)
		}
	}
	if *flagHistory != "" {
		b, err := json.MarshalIndent(rep.History, "", " ")
		if err == nil {
			err = os.WriteFile(*flagHistory, b, 0o644)
		}
		if err != nil {
			t.Error(err)
		}
	}
	if *flagLogs != "" {
		for name, l := range rep.FullLogs {
			if err := os.WriteFile(filepath.Join(*flagLogs, name+".log"), []byte(l), 0o644); err != nil {
				t.Error(err)
			}
		}
	}
	if rep.ViolationCount() > 0 {
		for _, l := range rep.Logs {
			t.Log(l)
		}
	}
	for _, k := range FaultKinds {
		if len(rep.Faults[k]) == 0 {
			t.Errorf("fault %s was never injected", k)
		}
	}
	for _, m := range rep.SelfTest {
		t.Errorf("checker self-test: %s", m)
	}
	if rep.Acked == 0 {
		t.Error("no payment was acknowledged: the run tested nothing")
	}
	if n := rep.ViolationCount(); n > 0 {
		t.Errorf("%d violations (seed %d): see the table", n, seed)
	}
}

package loadtest

import (
	"math"
	"strings"
	"testing"
)

const metricsText = `# HELP payments_txn_retries_total Transaction attempts that failed with a retryable error and were retried.
# TYPE payments_txn_retries_total counter
payments_txn_retries_total{reason="serialization_failure",shard="local-0"} 12
payments_txn_retries_total{reason="deadlock_detected",shard="local-0"} 3
payments_txn_retries_total{reason="serialization_failure",shard="local-1"} 5 1700000000000
# HELP payments_txn_total Transactions run, by final outcome.
# TYPE payments_txn_total counter
payments_txn_total{outcome="committed",shard="local-0"} 1000
payments_txn_total{outcome="exhausted",shard="local-0"} 2
payments_txn_total{outcome="exhausted",shard="local-1"} 1
payments_txn_total{outcome="failed",shard="od\"d,\\shard\n"} 4e1
payments_txn_total_other 99
payments_txn_attempts_bucket{shard="local-0",le="+Inf"} 1000
go_goroutines 42

http_requests_total 7
`

func TestTxnCountersOf(t *testing.T) {
	t.Parallel()
	c, err := TxnCountersOf(strings.NewReader(metricsText))
	if err != nil {
		t.Fatal(err)
	}
	want := TxnCounters{Retries: 20, Total: 1043, Exhausted: 3}
	if c != want {
		t.Errorf("TxnCountersOf = %+v, want %+v", c, want)
	}
	c, err = TxnCountersOf(strings.NewReader("# nothing here\ngo_goroutines 3\n"))
	if err != nil || c != (TxnCounters{}) {
		t.Errorf("no counters: %+v, %v", c, err)
	}
}

func TestParsePromText(t *testing.T) {
	t.Parallel()
	s, err := ParsePromText(strings.NewReader(metricsText), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(s) != 11 {
		t.Fatalf("%d samples, want 11", len(s))
	}
	odd := s[6]
	if odd.Labels["shard"] != "od\"d,\\shard\n" || odd.Labels["outcome"] != "failed" || odd.Value != 40 {
		t.Errorf("escaped labels: %+v", odd)
	}
	if s[8].Labels["le"] != "+Inf" || s[8].Value != 1000 {
		t.Errorf("bucket: %+v", s[8])
	}
	inf, err := ParsePromText(strings.NewReader("a +Inf\nb NaN\n"), nil)
	if err != nil || !math.IsInf(inf[0].Value, 1) || !math.IsNaN(inf[1].Value) {
		t.Errorf("special values: %+v, %v", inf, err)
	}
}

func TestParsePromTextRefuses(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		"payments_txn_total{outcome=\"committed\" 5\n",
		"payments_txn_total{outcome=committed} 5\n",
		"payments_txn_total{outcome} 5\n",
		"payments_txn_total five\n",
		"payments_txn_total\n",
		"payments_txn_total 1 2 3\n",
		"{outcome=\"x\"} 1\n",
	} {
		if _, err := TxnCountersOf(strings.NewReader(in)); err == nil {
			t.Errorf("TxnCountersOf(%q) = nil error, want one", in)
		} else if !strings.Contains(err.Error(), "metrics line 1") {
			t.Errorf("TxnCountersOf(%q) = %q, want the line number", in, err)
		}
	}
}

package loadtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
)

// The server's transaction counters, read from /metrics around each step.
const (
	metricTxnRetries = "payments_txn_retries_total"
	metricTxn        = "payments_txn_total"
)

// TxnCounters are the server's transaction counters at one moment, summed
// over shards and reasons.
type TxnCounters struct {
	Retries   float64 // payments_txn_retries_total
	Total     float64 // payments_txn_total
	Exhausted float64 // payments_txn_total{outcome="exhausted"}
}

// Sample is one line of the Prometheus text format.
type Sample struct {
	Name   string
	Labels map[string]string
	Value  float64
}

// metricsBodyMax bounds what is read of /metrics.
const metricsBodyMax = 32 << 20

// ParsePromText reads the Prometheus text exposition format and answers the
// samples whose metric name keep accepts (all when keep is nil). Comments,
// timestamps and blank lines are skipped; a malformed sample line is an
// error.
func ParsePromText(r io.Reader, keep func(name string) bool) ([]Sample, error) {
	var out []Sample
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || text[0] == '#' {
			continue
		}
		name, rest := splitName(text)
		if name == "" {
			return nil, fmt.Errorf("metrics line %d: no metric name in %q", line, text)
		}
		if keep != nil && !keep(name) {
			continue
		}
		s := Sample{Name: name}
		if strings.HasPrefix(rest, "{") {
			labels, after, err := parseLabels(rest[1:])
			if err != nil {
				return nil, fmt.Errorf("metrics line %d: %w", line, err)
			}
			s.Labels, rest = labels, after
		}
		fields := strings.Fields(rest)
		if len(fields) < 1 || len(fields) > 2 {
			return nil, fmt.Errorf("metrics line %d: want a value (and a timestamp) after %s, got %q", line, name, rest)
		}
		v, err := parsePromFloat(fields[0])
		if err != nil {
			return nil, fmt.Errorf("metrics line %d: value %q: %w", line, fields[0], err)
		}
		s.Value = v
		out = append(out, s)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read metrics: %w", err)
	}
	return out, nil
}

func splitName(s string) (name, rest string) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9' {
			continue
		}
		return s[:i], strings.TrimLeft(s[i:], " \t")
	}
	return s, ""
}

// parseLabels reads name="value" pairs up to the closing brace; s starts
// after the opening brace.
func parseLabels(s string) (map[string]string, string, error) {
	labels := map[string]string{}
	for {
		s = strings.TrimLeft(s, " \t,")
		if strings.HasPrefix(s, "}") {
			return labels, s[1:], nil
		}
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return nil, "", fmt.Errorf("label without value in %q", s)
		}
		name := strings.TrimSpace(s[:eq])
		s = strings.TrimLeft(s[eq+1:], " \t")
		if !strings.HasPrefix(s, `"`) {
			return nil, "", fmt.Errorf("label %s: value is not quoted", name)
		}
		var b strings.Builder
		i := 1
		for ; i < len(s) && s[i] != '"'; i++ {
			if s[i] != '\\' || i+1 == len(s) {
				b.WriteByte(s[i])
				continue
			}
			i++
			switch s[i] {
			case 'n':
				b.WriteByte('\n')
			default: // \\ and \"
				b.WriteByte(s[i])
			}
		}
		if i == len(s) {
			return nil, "", fmt.Errorf("label %s: unterminated value", name)
		}
		labels[name] = b.String()
		s = s[i+1:]
	}
}

func parsePromFloat(s string) (float64, error) {
	switch s {
	case "+Inf":
		return math.Inf(1), nil
	case "-Inf":
		return math.Inf(-1), nil
	case "NaN":
		return math.NaN(), nil
	}
	return strconv.ParseFloat(s, 64)
}

// TxnCountersOf sums the transaction counters in a /metrics text.
func TxnCountersOf(r io.Reader) (TxnCounters, error) {
	samples, err := ParsePromText(r, func(name string) bool { return name == metricTxnRetries || name == metricTxn })
	if err != nil {
		return TxnCounters{}, err
	}
	var c TxnCounters
	for _, s := range samples {
		switch s.Name {
		case metricTxnRetries:
			c.Retries += s.Value
		case metricTxn:
			c.Total += s.Value
			if s.Labels["outcome"] == "exhausted" {
				c.Exhausted += s.Value
			}
		}
	}
	return c, nil
}

// errNoMetrics is returned when the server has no /metrics.
var errNoMetrics = errors.New("no /metrics")

// scrapeTxn reads the server's transaction counters from /metrics (no auth).
func scrapeTxn(ctx context.Context, c *http.Client, base string) (TxnCounters, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return TxnCounters{}, fmt.Errorf("scrape metrics: %w", err)
	}
	req.Header.Set("Accept", "text/plain")
	resp, err := c.Do(req)
	if err != nil {
		return TxnCounters{}, fmt.Errorf("scrape metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return TxnCounters{}, errNoMetrics
	}
	if resp.StatusCode != http.StatusOK {
		return TxnCounters{}, fmt.Errorf("scrape metrics: %s", resp.Status)
	}
	c2, err := TxnCountersOf(io.LimitReader(resp.Body, metricsBodyMax))
	if err != nil {
		return TxnCounters{}, fmt.Errorf("scrape metrics: %w", err)
	}
	return c2, nil
}

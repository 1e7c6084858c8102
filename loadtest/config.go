// Package loadtest is the payments API's load generator: it creates tenants
// through the admin API, then offers fixed-rate steps of payment traffic
// (open model) with vegeta, and reports latency, status counts, its own CPU
// per request and the server's transaction retries for each step.
//
// It is a black-box HTTP client: it talks to the API only over HTTP and
// imports none of the server's packages.
package loadtest

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Defaults and limits of a run.
const (
	// BaseURLDefault is where `make run` serves the API.
	BaseURLDefault = "http://127.0.0.1:8080"
	// StepsDefault climbs from 250/s to 10,000/s in 20 s steps.
	StepsDefault = "250:20s,500:20s,1000:20s,2000:20s,4000:20s,6000:20s,8000:20s,10000:20s"
	// MixDefault offers only automatic-capture payment creations.
	MixDefault = "create=1"
	// TenantsDefault spreads 10,000/s over 200 tenants: 50/s each, half of
	// the server's default per-tenant limit of 100/s.
	TenantsDefault = 200
	// SetupConcurrencyDefault is how many tenants are created at once.
	SetupConcurrencyDefault = 16
	// TimeoutDefault bounds one request.
	TimeoutDefault = 10 * time.Second
	// WorkersMaxDefault bounds the attacker's goroutines (and so its
	// connections): enough for 10,000/s at 400 ms each.
	WorkersMaxDefault = 4096
	// WarmupDefault is a short run at the first step's rate that is not
	// reported, so that connections and server caches exist.
	WarmupDefault = 3 * time.Second
	// SuccessMinDefault is the success ratio a step needs to pass.
	SuccessMinDefault = 0.999
	// P99MaxDefault is the p99 latency a step must stay under to pass.
	P99MaxDefault = 200 * time.Millisecond
	// StopAfterFailuresDefault ends a run after this many failing steps in
	// a row; 0 runs every step.
	StopAfterFailuresDefault = 2
	// RegionDefault is the region of `make run`'s single shard.
	RegionDefault = "local"
	// AdminTokenFileDefault is where `make run` keeps its admin token.
	AdminTokenFileDefault = ".dev/admin-token"

	// StepsMax bounds the step list.
	StepsMax = 100
	// StepRateMax bounds one step's rate.
	StepRateMax = 1_000_000
	// StepDurationMax bounds one step's duration, so that a run stops.
	StepDurationMax = time.Hour
	// TenantsMax bounds the setup.
	TenantsMax = 100_000
)

// Step is one fixed-rate phase: Rate requests per second for Duration.
type Step struct {
	Rate     int
	Duration time.Duration
}

// String renders a step as ParseSteps reads it.
func (s Step) String() string { return fmt.Sprintf("%d:%s", s.Rate, s.Duration) }

// ParseSteps reads a comma-separated list of RATE:DURATION, such as
// "250:20s,500:20s".
func ParseSteps(s string) ([]Step, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("steps: empty list; want RATE:DURATION[,RATE:DURATION...], such as 250:20s,500:20s")
	}
	parts := strings.Split(s, ",")
	if len(parts) > StepsMax {
		return nil, fmt.Errorf("steps: %d steps, at most %d", len(parts), StepsMax)
	}
	steps := make([]Step, 0, len(parts))
	for i, p := range parts {
		p = strings.TrimSpace(p)
		rateText, durText, ok := strings.Cut(p, ":")
		if !ok {
			return nil, fmt.Errorf("steps: step %d %q: want RATE:DURATION, such as 500:20s", i+1, p)
		}
		rate, err := strconv.Atoi(strings.TrimSpace(rateText))
		if err != nil || rate < 1 || rate > StepRateMax {
			return nil, fmt.Errorf("steps: step %d %q: rate must be a whole number of requests per second from 1 to %d", i+1, p, StepRateMax)
		}
		d, err := time.ParseDuration(strings.TrimSpace(durText))
		if err != nil {
			return nil, fmt.Errorf("steps: step %d %q: duration: %w", i+1, p, err)
		}
		if d < 100*time.Millisecond || d > StepDurationMax {
			return nil, fmt.Errorf("steps: step %d %q: duration must be from 100ms to %s", i+1, p, StepDurationMax)
		}
		steps = append(steps, Step{Rate: rate, Duration: d})
	}
	return steps, nil
}

// Flow is one kind of client interaction that the mix weighs. A flow may
// take several requests.
type Flow int

// The flows of a mix.
const (
	// FlowCreate creates a payment with automatic capture.
	FlowCreate Flow = iota
	// FlowManualCapture creates a payment with manual capture, then
	// captures it.
	FlowManualCapture
	// FlowRefund creates a payment, then refunds part of it.
	FlowRefund
	// FlowGet retrieves a payment created earlier in the run.
	FlowGet
	flowCount
)

var flowNames = [flowCount]string{"create", "manual_capture", "refund", "get"}

// String is the flow's name in a mix.
func (f Flow) String() string {
	if f < 0 || f >= flowCount {
		return "flow(" + strconv.Itoa(int(f)) + ")"
	}
	return flowNames[f]
}

// Mix holds the weight of each flow.
type Mix [flowCount]int

// Weight is the flow's weight.
func (m Mix) Weight(f Flow) int { return m[f] }

// Total is the sum of the weights.
func (m Mix) Total() int {
	n := 0
	for _, w := range m {
		n += w
	}
	return n
}

// String renders the mix as ParseMix reads it, without zero weights.
func (m Mix) String() string {
	var b strings.Builder
	for f, w := range m {
		if w == 0 {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s=%d", Flow(f), w)
	}
	return b.String()
}

// MixWeightMax bounds one weight.
const MixWeightMax = 1000

// ParseMix reads comma-separated FLOW=WEIGHT pairs, such as
// "create=6,manual_capture=2,refund=1,get=1". Flows not named weigh 0.
func ParseMix(s string) (Mix, error) {
	var m Mix
	s = strings.TrimSpace(s)
	if s == "" {
		return m, fmt.Errorf("mix: empty; want FLOW=WEIGHT[,...] with flows %s", strings.Join(flowNames[:], ", "))
	}
	seen := map[Flow]bool{}
	for p := range strings.SplitSeq(s, ",") {
		p = strings.TrimSpace(p)
		name, wText, ok := strings.Cut(p, "=")
		if !ok {
			return m, fmt.Errorf("mix: %q: want FLOW=WEIGHT, such as create=6", p)
		}
		name = strings.TrimSpace(name)
		i := slices.Index(flowNames[:], name)
		if i < 0 {
			return m, fmt.Errorf("mix: unknown flow %q; flows are %s", name, strings.Join(flowNames[:], ", "))
		}
		f := Flow(i)
		if seen[f] {
			return m, fmt.Errorf("mix: flow %q given twice", name)
		}
		seen[f] = true
		w, err := strconv.Atoi(strings.TrimSpace(wText))
		if err != nil || w < 0 || w > MixWeightMax {
			return m, fmt.Errorf("mix: %q: weight must be a whole number from 0 to %d", p, MixWeightMax)
		}
		m[f] = w
	}
	if m.Total() == 0 {
		return m, errors.New("mix: every weight is 0; give at least one flow a positive weight")
	}
	return m, nil
}

// CheckBaseURL parses the target's base URL and refuses a host that is not
// a loopback address (127.0.0.0/8, ::1, localhost) unless allowRemote: a
// load test must never hit a machine by accident. Names other than
// localhost are refused without being resolved.
func CheckBaseURL(raw string, allowRemote bool) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return nil, fmt.Errorf("base url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("base url %q: scheme must be http or https", raw)
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, fmt.Errorf("base url %q: no host", raw)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("base url %q: give only scheme, host, port and path", raw)
	}
	if !allowRemote && !IsLoopbackHost(u.Hostname()) {
		return nil, fmt.Errorf("base url %q: host %q is not a loopback address (127.0.0.0/8, ::1, localhost); pass -allow-remote to target it anyway", raw, u.Hostname())
	}
	u.Path = strings.TrimRight(u.Path, "/")
	return u, nil
}

// IsLoopbackHost reports whether host is localhost or a loopback IP.
func IsLoopbackHost(host string) bool {
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

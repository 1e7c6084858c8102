package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// Op is the operation of one request, the label of its sample.
type Op int

// The operations.
const (
	// OpCreate is POST /v1/payments with automatic capture.
	OpCreate Op = iota
	// OpCreateManual is POST /v1/payments with capture_method manual.
	OpCreateManual
	// OpCapture is POST /v1/payments/{id}/capture.
	OpCapture
	// OpRefund is POST /v1/refunds.
	OpRefund
	// OpGet is GET /v1/payments/{id}.
	OpGet
	opCount
)

var opNames = [opCount]string{"create", "create_manual", "capture", "refund", "get"}

// String is the operation's label.
func (o Op) String() string {
	if o < 0 || o >= opCount {
		return "op(" + strconv.Itoa(int(o)) + ")"
	}
	return opNames[o]
}

// Every request's URL ends in a fragment "#<tag>.<tenant>" that tells the
// result's operation, its flow's next request and its tenant. Clients never
// send a fragment, so the server does not see it, and vegeta hands the URL
// back in each result: no per-request state has to be kept.
const (
	tagCreate       = 'c' // OpCreate, flow create: nothing follows
	tagCreateRefund = 'r' // OpCreate, flow refund: a refund follows
	tagCreateManual = 'm' // OpCreateManual: a capture follows
	tagCapture      = 'k'
	tagRefund       = 'f'
	tagGet          = 'g'
)

func opOfTag(tag byte) (Op, bool) {
	switch tag {
	case tagCreate, tagCreateRefund:
		return OpCreate, true
	case tagCreateManual:
		return OpCreateManual, true
	case tagCapture:
		return OpCapture, true
	case tagRefund:
		return OpRefund, true
	case tagGet:
		return OpGet, true
	}
	return 0, false
}

// parseFragment reads the tag and tenant of a request URL.
func parseFragment(u string) (tag byte, tenant int, ok bool) {
	i := strings.LastIndexByte(u, '#')
	if i < 0 || i+3 > len(u) || u[i+2] != '.' {
		return 0, 0, false
	}
	n, err := strconv.Atoi(u[i+3:])
	if err != nil {
		return 0, 0, false
	}
	return u[i+1], n, true
}

// Request bodies; the refund body is built around the payment's ID.
var (
	bodyCreate       = []byte(`{"amount": 2000, "currency": "usd", "payment_method": "pm_card_visa"}`)
	bodyCreateManual = []byte(`{"amount": 2000, "currency": "usd", "payment_method": "pm_card_visa", "capture_method": "manual"}`)
	bodyCapture      = []byte(`{}`)
	headerJSON       = []string{"application/json"}
)

const (
	refundBodyStart = `{"payment": "`
	refundBodyEnd   = `", "amount": 500}`
)

// Queues of the traffic engine.
const (
	// followUpsMax bounds the second requests of flows waiting for a tick;
	// beyond it they are dropped and counted.
	followUpsMax = 1 << 16
	// knownMax is how many created payments are kept for gets.
	knownMax = 1 << 13
)

// tenantTargets are a tenant's prebuilt URLs and headers.
type tenantTargets struct {
	auth         []string
	getHeader    http.Header
	createURL    string
	createRefund string
	createManual string
	suffix       string // ".<tenant>", the end of every fragment
}

type followUp struct {
	tenant int
	tag    byte // tagCapture or tagRefund
	id     string
}

type knownPayment struct {
	tenant int
	getURL string
}

// engine makes the targets of a run and reads their results. Its target
// method is called by many attacker goroutines at once; observe only by
// the one goroutine that reads results.
type engine struct {
	base      string
	tenants   []tenantTargets
	cumWeight [flowCount]int // cumulative mix weights
	total     int
	// bodyCreate and bodyCreateManual are the creation bodies: with a
	// location and a customer under -risk-rules.
	bodyCreate, bodyCreateManual []byte

	keyPrefix  string
	keySeq     atomic.Uint64
	tenantNext atomic.Uint64

	followUps chan followUp
	dropped   atomic.Uint64

	known  [knownMax]atomic.Pointer[knownPayment]
	knownN atomic.Uint64
}

func newEngine(base string, tenants []Tenant, mix Mix, keyPrefix string) *engine {
	e := &engine{base: base, keyPrefix: keyPrefix, followUps: make(chan followUp, followUpsMax), bodyCreate: bodyCreate, bodyCreateManual: bodyCreateManual}
	for i, t := range tenants {
		auth := []string{"Bearer " + t.Secret}
		suffix := "." + strconv.Itoa(i)
		e.tenants = append(e.tenants, tenantTargets{
			auth:         auth,
			getHeader:    http.Header{"Authorization": auth},
			createURL:    base + "/v1/payments#" + string(rune(tagCreate)) + suffix,
			createRefund: base + "/v1/payments#" + string(rune(tagCreateRefund)) + suffix,
			createManual: base + "/v1/payments#" + string(rune(tagCreateManual)) + suffix,
			suffix:       suffix,
		})
	}
	for f := range flowCount {
		e.total += mix[f]
		e.cumWeight[f] = e.total
	}
	return e
}

// key is a fresh Idempotency-Key: the run's random prefix and a counter,
// far cheaper than a random UUID per request.
func (e *engine) key() string {
	var buf [64]byte
	b := append(buf[:0], e.keyPrefix...)
	b = strconv.AppendUint(b, e.keySeq.Add(1), 36)
	return string(b)
}

func (e *engine) postHeader(t *tenantTargets) http.Header {
	return http.Header{
		"Authorization":   t.auth,
		"Content-Type":    headerJSON,
		"Idempotency-Key": []string{e.key()},
	}
}

func (e *engine) pickFlow() Flow {
	if e.total == 0 {
		return FlowCreate
	}
	r := rand.IntN(e.total)
	for f := range flowCount {
		if r < e.cumWeight[f] {
			return f
		}
	}
	return FlowCreate
}

// target is the vegeta Targeter: each call makes one request. A flow's
// second request waiting in the queue goes first, so that a step offers its
// rate in requests, whatever the mix.
func (e *engine) target(t *vegeta.Target) error {
	select {
	case fu := <-e.followUps:
		tt := &e.tenants[fu.tenant]
		t.Method = http.MethodPost
		t.Header = e.postHeader(tt)
		if fu.tag == tagCapture {
			t.URL = e.base + "/v1/payments/" + fu.id + "/capture#" + string(rune(tagCapture)) + tt.suffix
			t.Body = bodyCapture
		} else {
			t.URL = e.base + "/v1/refunds#" + string(rune(tagRefund)) + tt.suffix
			t.Body = append(append(append(make([]byte, 0, len(refundBodyStart)+len(fu.id)+len(refundBodyEnd)), refundBodyStart...), fu.id...), refundBodyEnd...)
		}
		return nil
	default:
	}
	flow := e.pickFlow()
	if flow == FlowGet {
		if kp := e.randomKnown(); kp != nil {
			t.Method = http.MethodGet
			t.URL = kp.getURL
			t.Header = e.tenants[kp.tenant].getHeader
			t.Body = nil
			return nil
		}
		flow = FlowCreate // nothing created yet
	}
	tt := &e.tenants[e.tenantNext.Add(1)%uint64(len(e.tenants))]
	t.Method = http.MethodPost
	t.Header = e.postHeader(tt)
	switch flow {
	case FlowManualCapture:
		t.URL, t.Body = tt.createManual, e.bodyCreateManual
	case FlowRefund:
		t.URL, t.Body = tt.createRefund, e.bodyCreate
	default:
		t.URL, t.Body = tt.createURL, e.bodyCreate
	}
	return nil
}

func (e *engine) randomKnown() *knownPayment {
	n := e.knownN.Load()
	if n == 0 {
		return nil
	}
	return e.known[rand.Uint64N(min(n, knownMax))].Load()
}

func (e *engine) remember(tenant int, id string) {
	kp := &knownPayment{tenant: tenant, getURL: e.base + "/v1/payments/" + id + "#" + string(rune(tagGet)) + e.tenants[tenant].suffix}
	n := e.knownN.Add(1) - 1
	e.known[n%knownMax].Store(kp)
}

// observe records one result in agg and queues what follows a created
// payment.
func (e *engine) observe(r *vegeta.Result, agg *stepAgg) {
	tag, tenant, ok := parseFragment(r.URL)
	op, known := opOfTag(tag)
	if !ok || !known || tenant < 0 || tenant >= len(e.tenants) {
		agg.unlabelled++
		return
	}
	agg.record(op, r)
	if r.Code < 200 || r.Code > 299 || (op != OpCreate && op != OpCreateManual) {
		return
	}
	id := paymentID(r.Body)
	if id == "" {
		agg.noID++
		return
	}
	e.remember(tenant, id)
	var next byte
	switch tag {
	case tagCreateManual:
		next = tagCapture
	case tagCreateRefund:
		next = tagRefund
	default:
		return
	}
	select {
	case e.followUps <- followUp{tenant: tenant, tag: next, id: id}:
	default:
		e.dropped.Add(1)
	}
}

var idField = []byte(`"id":`)

// paymentID reads the top-level "id" of a payment's JSON without decoding
// all of it: the payment's id is its first field named id. Anything
// unexpected falls back to encoding/json.
func paymentID(body []byte) string {
	if i := bytes.Index(body, idField); i >= 0 {
		rest := bytes.TrimLeft(body[i+len(idField):], " \t\r\n")
		if len(rest) > 1 && rest[0] == '"' {
			if j := bytes.IndexByte(rest[1:], '"'); j > 0 {
				id := rest[1 : 1+j]
				if bytes.HasPrefix(id, []byte("pay_")) && bytes.IndexByte(id, '\\') < 0 {
					return string(id)
				}
			}
		}
	}
	var v struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(body, &v) != nil {
		return ""
	}
	return v.ID
}

// opStats aggregates the results of one operation.
type opStats struct {
	requests, ok, s429, s5xx, other, errors uint64
	hist                                    Histogram
}

func (s *opStats) add(code uint16, latency time.Duration) {
	s.requests++
	s.hist.Record(latency)
	switch {
	case code == 0:
		s.errors++
	case code >= 200 && code <= 299:
		s.ok++
	case code == http.StatusTooManyRequests:
		s.s429++
	case code >= 500 && code <= 599:
		s.s5xx++
	default:
		s.other++
	}
}

// errorSamplesMax bounds the distinct error messages kept per step.
const errorSamplesMax = 8

// stepAgg aggregates one step's results in place: counts and histograms,
// never the results themselves.
type stepAgg struct {
	all        opStats
	ops        [opCount]opStats
	status     map[int]uint64
	timeouts   uint64
	unlabelled uint64
	noID       uint64
	errSamples []string
}

func newStepAgg() *stepAgg { return &stepAgg{status: map[int]uint64{}} }

func (a *stepAgg) record(op Op, r *vegeta.Result) {
	a.all.add(r.Code, r.Latency)
	a.ops[op].add(r.Code, r.Latency)
	if r.Code != 0 {
		a.status[int(r.Code)]++
		return
	}
	if isTimeout(r.Error) {
		a.timeouts++
	}
	if len(a.errSamples) < errorSamplesMax {
		msg := errorKind(r.Error)
		for _, s := range a.errSamples {
			if s == msg {
				return
			}
		}
		a.errSamples = append(a.errSamples, msg)
	}
}

func isTimeout(msg string) bool {
	return strings.Contains(msg, "Client.Timeout") || strings.Contains(msg, "deadline exceeded") || strings.Contains(msg, "timeout")
}

// errorKind drops the URL from a client error, which would make every
// message distinct: `Post "http://…/capture#k.3": dial tcp: …` becomes
// `Post: dial tcp: …`.
func errorKind(msg string) string {
	if i := strings.Index(msg, ` "`); i > 0 {
		if j := strings.Index(msg[i+2:], `": `); j >= 0 {
			return msg[:i] + msg[i+2+j+1:]
		}
	}
	return msg
}

// newAttackClient is the HTTP client of every step: no proxy, no
// redirects, no compression, and a dialer that connects only to the base
// URL's host, so that traffic goes nowhere else.
func newAttackClient(base *url.URL, timeout time.Duration, connsMax int) *http.Client {
	allowed := hostPort(base)
	d := &net.Dialer{Timeout: min(timeout, 5*time.Second), KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if addr != allowed {
				return nil, fmt.Errorf("dial %s: only %s is a target", addr, allowed)
			}
			return d.DialContext(ctx, network, addr)
		},
		MaxIdleConns:        connsMax,
		MaxIdleConnsPerHost: connsMax,
		MaxConnsPerHost:     connsMax,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	return &http.Client{
		Transport:     tr,
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// hostPort is the address the client dials for u.
func hostPort(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	return net.JoinHostPort(u.Hostname(), port)
}

package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

type ctxKey int

const (
	requestInfoKey ctxKey = iota
	principalKey
)

// requestInfo collects what the one log line of a request says. The HTTP
// middleware creates it; Huma middleware and handlers fill it in.
type requestInfo struct {
	mu        sync.Mutex
	id        string
	operation string
	tenant    string
	err       error
}

func infoFrom(ctx context.Context) *requestInfo {
	ri, _ := ctx.Value(requestInfoKey).(*requestInfo)
	return ri
}

func requestIDFrom(ctx context.Context) string {
	if ri := infoFrom(ctx); ri != nil {
		return ri.id
	}
	return ""
}

// noteError keeps the cause of a 500 for the request's log line.
func noteError(ctx context.Context, err error) {
	if ri := infoFrom(ctx); ri != nil {
		ri.mu.Lock()
		ri.err = err
		ri.mu.Unlock()
	}
}

func noteOperation(ctx context.Context, op, tenant string) {
	if ri := infoFrom(ctx); ri != nil {
		ri.mu.Lock()
		if op != "" {
			ri.operation = op
		}
		if tenant != "" {
			ri.tenant = tenant
		}
		ri.mu.Unlock()
	}
}

func newRequestID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return "req_" + hex.EncodeToString(b)
}

type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int
	// conn is the context net/http gave the request, which derives from
	// its connection's: once it is done, the connection is not reused.
	conn context.Context
	// noBody says the request has no body to read.
	noBody bool
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
		w.closeIfCanceled()
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
		w.closeIfCanceled()
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += n
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// SetReadDeadline passes a read deadline on to the connection, except for
// a request without a body. Huma sets one before it reads any request
// body; on a request with none, net/http's background read of the
// connection is already waiting, and when the deadline passes while the
// handler still runs, net/http cancels the connection's context
// (golang/go#70834). A body-less request has nothing left to read.
func (w *statusWriter) SetReadDeadline(t time.Time) error {
	if w.noBody {
		return nil
	}
	return http.NewResponseController(w.ResponseWriter).SetReadDeadline(t)
}

// closeIfCanceled asks net/http to close the connection after this answer
// when the connection's context is already canceled. net/http cancels it
// when the connection's read deadline passes while a handler runs, but
// keeps serving the connection: every later request on it would start
// with a canceled context and fail at once (golang/go#70834).
func (w *statusWriter) closeIfCanceled() {
	if w.conn != nil && w.conn.Err() != nil {
		w.Header().Set("Connection", "close")
	}
}

type httpMetrics struct {
	requests   *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	staleConns prometheus.Counter
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "payments_http_requests_total",
			Help: "HTTP requests by operation and status code.",
		}, []string{"operation", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "payments_http_request_duration_seconds",
			Help:    "HTTP request latency by operation and status code.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .2, .5, 1, 2.5, 5, 10},
		}, []string{"operation", "status"}),
	}
	m.staleConns = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "payments_http_canceled_connection_requests_total",
		Help: "Requests that arrived on a connection whose context was already canceled; each was served under its own and the connection closed.",
	})
	reg.MustRegister(m.requests, m.latency, m.staleConns)
	return m
}

// edge wraps every route: request ID, panic recovery, the request's time
// bound, one structured log line, and the request metrics. It never logs
// headers or bodies, so no secret key and no card data reach a log. Inside
// a traced request (the server span of tracing.HTTPHandler) it puts the
// request ID on the span, names the span after the operation, and logs the
// trace ID.
//
// timeout bounds each request (zero: no bound of the edge's own). A
// request that arrives already canceled came on a connection whose
// context net/http canceled earlier (see closeIfCanceled): it is served
// under a context of its own, and its connection closed after the answer.
func edge(next http.Handler, log *slog.Logger, m *httpMetrics, timeout time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ri := &requestInfo{id: newRequestID(), operation: "unmatched"}
		w.Header().Set("Request-Id", ri.id)
		span := trace.SpanFromContext(r.Context())
		traced := span.IsRecording()
		if traced {
			span.SetAttributes(attribute.String("request_id", ri.id))
		}
		sw := &statusWriter{ResponseWriter: w, conn: r.Context(), noBody: r.Body == nil || r.Body == http.NoBody}
		base := r.Context()
		if base.Err() != nil {
			m.staleConns.Inc()
			base = context.WithoutCancel(base)
			w.Header().Set("Connection", "close")
		}
		if timeout > 0 {
			var cancel context.CancelFunc
			base, cancel = context.WithTimeout(base, timeout)
			defer cancel()
		}
		ctx := context.WithValue(base, requestInfoKey, ri)
		defer func() {
			if rec := recover(); rec != nil {
				if rec == http.ErrAbortHandler {
					panic(rec)
				}
				ri.err = panicError{rec}
				if sw.status == 0 {
					writeProblem(sw, newProblem(ctx, http.StatusInternalServerError, "", "an internal error occurred"))
				}
			}
			status := sw.status
			if status == 0 {
				status = http.StatusOK
			}
			elapsed := time.Since(start)
			ri.mu.Lock()
			op, tenant, cause := ri.operation, ri.tenant, ri.err
			ri.mu.Unlock()
			code := strconv.Itoa(status)
			m.requests.WithLabelValues(op, code).Inc()
			m.latency.WithLabelValues(op, code).Observe(elapsed.Seconds())
			attrs := []slog.Attr{
				slog.String("request_id", ri.id),
				slog.String("method", r.Method),
				slog.String("path", redactPath(r.URL.Path)),
				slog.String("operation", op),
				slog.Int("status", status),
				slog.Float64("latency_ms", float64(elapsed.Microseconds())/1000),
				slog.Int("bytes", sw.bytes),
			}
			if tenant != "" {
				attrs = append(attrs, slog.String("tenant", tenant))
			}
			if traced {
				span.SetName(r.Method + " " + op)
				span.SetAttributes(attribute.String("payments.operation", op))
				if tenant != "" {
					span.SetAttributes(attribute.String("payments.tenant", tenant))
				}
				attrs = append(attrs, slog.String("trace_id", span.SpanContext().TraceID().String()))
			}
			level := slog.LevelInfo
			if status >= 500 {
				level = slog.LevelError
				if cause != nil {
					attrs = append(attrs, slog.String("error", cause.Error()))
				}
			}
			log.LogAttrs(ctx, level, "request", attrs...)
		}()
		next.ServeHTTP(sw, r.WithContext(ctx))
	})
}

type panicError struct{ v any }

func (p panicError) Error() string { return "panic: " + strconv.Quote(stringOf(p.v)) }

func stringOf(v any) string {
	switch x := v.(type) {
	case error:
		return x.Error()
	case string:
		return x
	default:
		b, _ := json.Marshal(x)
		return string(b)
	}
}

func writeProblem(w http.ResponseWriter, p *Problem) {
	for k, vs := range p.headers {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

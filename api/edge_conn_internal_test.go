package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// connServer serves h behind the edge on a real listener, with the given
// read deadline, and counts the connections it accepted.
func connServer(t *testing.T, h http.Handler, readTimeout, requestTimeout time.Duration) (string, *httpMetrics, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := newHTTPMetrics(prometheus.NewRegistry())
	var conns atomic.Int64
	hs := &http.Server{
		Handler:     edge(h, slog.New(slog.DiscardHandler), m, requestTimeout),
		ReadTimeout: readTimeout,
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				conns.Add(1)
			}
		},
	}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close() })
	return "http://" + ln.Addr().String(), m, &conns
}

// contextReporter answers /report with whether the request's context was
// live. The other routes set a read deadline on the connection, as Huma
// does before it reads a body, and outlive it: /huma through the edge's
// writer, /slow and /late on net/http's own, before and after answering.
func contextReporter(slow time.Duration) http.Handler {
	deadline := func(w http.ResponseWriter) {
		if err := http.NewResponseController(w).SetReadDeadline(time.Now().Add(slow / 4)); err != nil {
			panic(err)
		}
	}
	raw := func(w http.ResponseWriter) http.ResponseWriter {
		return w.(interface{ Unwrap() http.ResponseWriter }).Unwrap()
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/report", func(w http.ResponseWriter, r *http.Request) {
		if err := r.Context().Err(); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_, _ = io.WriteString(w, "live")
	})
	mux.HandleFunc("/huma", func(w http.ResponseWriter, r *http.Request) {
		deadline(w)
		time.Sleep(slow)
		_, _ = io.WriteString(w, "huma")
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		deadline(raw(w))
		time.Sleep(slow)
		_, _ = io.WriteString(w, "slow")
	})
	mux.HandleFunc("/late", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "late")
		_ = http.NewResponseController(w).Flush()
		deadline(raw(w))
		time.Sleep(slow)
	})
	return mux
}

func get(t *testing.T, c *http.Client, url string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// A read deadline that passes while a handler runs makes net/http cancel
// the connection's context while keeping the connection open
// (golang/go#70834; Huma sets one before reading a body, also on a POST
// without one); the requests that follow on it must still be served with
// a live context.
func TestEdgeRequestAfterReadDeadlineOnSameConnection(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		first string
		conns int64   // connections that served the requests
		stale float64 // requests that arrived on a canceled connection
	}{
		{"/huma", 1, 0}, // the edge keeps a body-less request's deadline off the connection
		{"/slow", 2, 0}, // the answer asks for the connection to close
		{"/late", 2, 1}, // canceled after the answer: the next request gets its own context
	} {
		t.Run(tc.first[1:], func(t *testing.T) {
			t.Parallel()
			base, m, conns := connServer(t, contextReporter(400*time.Millisecond), time.Minute, 0)
			tr := &http.Transport{MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			resp, err := c.Post(base+tc.first, "application/json", nil)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%s answered %d", tc.first, resp.StatusCode)
			}
			// A request sent at once would satisfy the background read;
			// the client waits past the deadline and the handler's end.
			time.Sleep(500 * time.Millisecond)
			for i := range 3 {
				resp, body := get(t, c, base+"/report")
				if resp.StatusCode != http.StatusOK || body != "live" {
					t.Fatalf("request %d after %s answered %d %q: its context was canceled on arrival", i+1, tc.first, resp.StatusCode, body)
				}
			}
			if n := conns.Load(); n != tc.conns {
				t.Fatalf("%d connection(s) served the requests, want %d", n, tc.conns)
			}
			var got dto.Metric
			if err := m.staleConns.Write(&got); err != nil {
				t.Fatal(err)
			}
			if v := got.GetCounter().GetValue(); v != tc.stale {
				t.Fatalf("%v requests counted as arriving on a canceled connection, want %v", v, tc.stale)
			}
		})
	}
}

// Past the edge's bound, a request's context ends and the client is told
// 503 service_unavailable, retryable, instead of an internal error.
func TestEdgeRequestTimeoutAnswers503(t *testing.T) {
	t.Parallel()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
		writeProblem(w, problemFrom(r.Context(), fmt.Errorf("read payment: %w", r.Context().Err())))
	})
	base, _, _ := connServer(t, h, time.Minute, 100*time.Millisecond)
	c := &http.Client{Timeout: 10 * time.Second}
	resp, body := get(t, c, base+"/")
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("answered %d %s, want 503", resp.StatusCode, body)
	}
	var p struct{ Code string }
	if err := json.Unmarshal([]byte(body), &p); err != nil || p.Code != "service_unavailable" {
		t.Fatalf("body %s (%v), want code service_unavailable", body, err)
	}
	// A client that goes away is not the edge's bound: its error stays
	// what it was (nobody reads the answer).
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if p := problemFrom(ctx, fmt.Errorf("x: %w", ctx.Err())); p.Status != http.StatusInternalServerError {
		t.Fatalf("a canceled request answered %d", p.Status)
	}
}

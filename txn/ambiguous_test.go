package txn_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/payments-api/payments/dbtest"
	"github.com/payments-api/payments/txn"
)

// cutMode says when an armed commitCutter breaks the connection.
type cutMode int32

const (
	passThrough        cutMode = iota
	cutBeforeCommit            // drop the COMMIT: the server never sees it
	cutAfterCommitSent         // forward the COMMIT, drop the server's answer
)

// commitCutter is a TCP proxy to a PostgreSQL server that, once armed,
// breaks the first connection on which the client sends COMMIT. pgx sends
// a transaction's COMMIT as the query text "commit", so the proxy scans the
// client's bytes for that word.
type commitCutter struct {
	ln       net.Listener
	upstream string
	mode     atomic.Int32
	cuts     atomic.Int32

	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

func newCommitCutter(tb testing.TB, upstream string) *commitCutter {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	p := &commitCutter{ln: ln, upstream: upstream}
	p.wg.Go(p.accept)
	tb.Cleanup(func() {
		_ = ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			_ = c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

// arm makes the next COMMIT on any connection trigger mode, once.
func (p *commitCutter) arm(mode cutMode) { p.mode.Store(int32(mode)) }

func (p *commitCutter) accept() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return // listener closed
		}
		server, err := net.Dial("tcp", p.upstream)
		if err != nil {
			_ = client.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, client, server)
		p.mu.Unlock()
		p.serve(client, server)
	}
}

func (p *commitCutter) serve(client, server net.Conn) {
	closeBoth := sync.OnceFunc(func() {
		_ = client.Close()
		_ = server.Close()
	})
	// commitSent is set before the COMMIT is forwarded, so that the
	// server's answer cannot overtake it. Everything the server sent
	// before was relayed before the client could send COMMIT.
	var commitSent atomic.Bool

	p.wg.Go(func() { // server → client
		defer closeBoth()
		buf := make([]byte, 32<<10)
		for {
			n, err := server.Read(buf)
			if n > 0 {
				if commitSent.Load() {
					p.cuts.Add(1)
					return // the answer to COMMIT never reaches the client
				}
				if _, err := client.Write(buf[:n]); err != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	})
	p.wg.Go(func() { // client → server
		defer closeBoth()
		buf := make([]byte, 32<<10)
		var tail []byte // the end of the previous read, for a word split across reads
		for {
			n, err := client.Read(buf)
			if n > 0 {
				chunk := buf[:n]
				window := bytes.ToLower(append(tail, chunk...))
				seen := bytes.Contains(window, []byte("commit"))
				tail = window[max(0, len(window)-len("commit")+1):]
				if seen {
					switch cutMode(p.mode.Swap(int32(passThrough))) {
					case cutBeforeCommit:
						p.cuts.Add(1)
						return
					case cutAfterCommitSent:
						commitSent.Store(true)
					}
				}
				if _, err := server.Write(chunk); err != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	})
}

// TestCommitWithoutAnswerIsAmbiguous breaks the connection around COMMIT.
// In one variant the server never got the COMMIT, in the other it committed
// but its answer was lost: the client cannot tell these apart, so Run must
// report ErrAmbiguousCommit in both, and must not retry (a retry after the
// second would apply fn twice).
func TestCommitWithoutAnswerIsAmbiguous(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		mode      cutMode
		committed bool
	}{
		{"commit never reached the server", cutBeforeCommit, false},
		{"answer to commit lost", cutAfterCommitSent, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			dsn := dbtest.NewDatabase(t)
			direct, err := pgxpool.New(ctx, dsn)
			if err != nil {
				t.Fatalf("connect: %v", err)
			}
			t.Cleanup(direct.Close)
			mustExec(t, direct, `CREATE TABLE entries (id int PRIMARY KEY)`)

			u, err := url.Parse(dsn)
			if err != nil {
				t.Fatalf("parse test database URL: %v", err)
			}
			proxy := newCommitCutter(t, u.Host)
			u.Host = proxy.ln.Addr().String()
			proxied, err := pgxpool.New(ctx, u.String())
			if err != nil {
				t.Fatalf("connect through proxy: %v", err)
			}
			t.Cleanup(proxied.Close)
			reg := prometheus.NewRegistry()
			runner := newRunner(t, proxied, txn.Options{Name: "cut", Metrics: txn.NewMetrics(reg)})

			proxy.arm(tc.mode)
			calls := 0
			err = runner.Run(ctx, func(ctx context.Context, tx pgx.Tx) error {
				calls++
				_, err := tx.Exec(ctx, `INSERT INTO entries (id) VALUES (1)`)
				return err
			})

			if proxy.cuts.Load() != 1 {
				t.Fatalf("the proxy cut %d connections, want 1: the test did not break the COMMIT", proxy.cuts.Load())
			}
			if !errors.Is(err, txn.ErrAmbiguousCommit) {
				t.Errorf("Run: %v, want an error matching ErrAmbiguousCommit", err)
			}
			if txn.IsRetryable(err) {
				t.Errorf("IsRetryable(%v) = true, want false", err)
			}
			if calls != 1 {
				t.Errorf("fn ran %d times, want 1: an ambiguous commit must not be retried", calls)
			}
			if got := metricSum(t, reg, "payments_txn_total", map[string]string{"outcome": txn.OutcomeAmbiguous}); got != 1 {
				t.Errorf("payments_txn_total{outcome=ambiguous} = %v, want 1", got)
			}

			var rows int
			if err := direct.QueryRow(ctx, `SELECT count(*) FROM entries`).Scan(&rows); err != nil {
				t.Fatalf("count entries: %v", err)
			}
			if committed := rows == 1; committed != tc.committed {
				t.Errorf("committed = %v, want %v: the two cuts must show both outcomes", committed, tc.committed)
			}

			// The pool recovers: the next transaction gets a fresh connection.
			err = runner.Run(ctx, func(ctx context.Context, tx pgx.Tx) error {
				_, err := tx.Exec(ctx, `INSERT INTO entries (id) VALUES (2)`)
				return err
			})
			if err != nil {
				t.Errorf("Run after the cut: %v", err)
			}
		})
	}
}

// Package dbtest gives each test its own migrated PostgreSQL database on the
// server that `make test` starts, so test packages run in parallel without
// seeing each other's rows. Databases are cloned from a template that is
// migrated once per set of migration files.
package dbtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/payments-api/payments/migrations"
)

// EnvDatabaseURL names the variable with a superuser connection to the test
// server's maintenance database; `make test` sets it.
const EnvDatabaseURL = "PAYMENTS_TEST_DATABASE_URL"

// EnvRedisURL names the variable with the test Redis; `make test` sets it.
const EnvRedisURL = "PAYMENTS_TEST_REDIS_URL"

// CreateAttemptsMax bounds retries of CREATE DATABASE, which PostgreSQL
// refuses while another session briefly touches the template.
const CreateAttemptsMax = 50

// AdminURL returns the maintenance connection string or fails the test with
// instructions.
func AdminURL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv(EnvDatabaseURL)
	if u == "" {
		tb.Fatalf("%s is not set: run the suite with `make test`, which starts PostgreSQL and Redis", EnvDatabaseURL)
	}
	return u
}

// RedisURL returns the test Redis URL or fails the test with instructions.
func RedisURL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv(EnvRedisURL)
	if u == "" {
		tb.Fatalf("%s is not set: run the suite with `make test`, which starts PostgreSQL and Redis", EnvRedisURL)
	}
	return u
}

// withDatabase returns dsn with its database name replaced.
func withDatabase(dsn, name string) (string, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return "", fmt.Errorf("parse %s: %w", EnvDatabaseURL, err)
	}
	u.Path = "/" + name
	return u.String(), nil
}

func templateName() (string, error) {
	h := sha256.New()
	for _, set := range []migrations.Set{migrations.SetCommon, migrations.SetCockroach} {
		ms, err := migrations.Load(set)
		if err != nil {
			return "", err
		}
		for _, m := range ms {
			h.Write([]byte(m.Key()))
			h.Write([]byte{0})
			h.Write([]byte(m.SQL))
		}
	}
	return "payments_tmpl_" + hex.EncodeToString(h.Sum(nil))[:16], nil
}

func randomSuffix() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func sqlState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// ensureTemplate creates the migrated template database once. Concurrent
// test processes each migrate a private database and race to rename it to
// the template name; the losers drop theirs.
func ensureTemplate(ctx context.Context, admin *pgx.Conn, adminURL string) (string, error) {
	name, err := templateName()
	if err != nil {
		return "", err
	}
	var exists bool
	if err := admin.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return "", fmt.Errorf("look up template: %w", err)
	}
	if exists {
		return name, nil
	}
	build := "payments_build_" + randomSuffix()
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+build); err != nil {
		return "", fmt.Errorf("create %s: %w", build, err)
	}
	dsn, err := withDatabase(adminURL, build)
	if err != nil {
		return "", err
	}
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return "", fmt.Errorf("connect %s: %w", build, err)
	}
	_, err = migrations.Up(ctx, pool)
	pool.Close()
	if err != nil {
		return "", fmt.Errorf("migrate template: %w", err)
	}
	if _, err := admin.Exec(ctx, "ALTER DATABASE "+build+" RENAME TO "+name); err != nil {
		_, _ = admin.Exec(ctx, "DROP DATABASE IF EXISTS "+build+" WITH (FORCE)")
		// duplicate_database, or unique_violation on pg_database when both
		// renames race: another process won.
		if st := sqlState(err); st != "42P04" && st != "23505" {
			return "", fmt.Errorf("rename template: %w", err)
		}
	}
	return name, nil
}

// NewDatabase creates an empty, migrated database for this test, drops it
// when the test ends, and returns its connection string.
func NewDatabase(tb testing.TB) string {
	tb.Helper()
	return newDatabase(tb, true)
}

// NewEmptyDatabase is NewDatabase without migrations, for tests of the
// migration runner itself.
func NewEmptyDatabase(tb testing.TB) string {
	tb.Helper()
	return newDatabase(tb, false)
}

func newDatabase(tb testing.TB, migrated bool) string {
	tb.Helper()
	adminURL := AdminURL(tb)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	admin, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		tb.Fatalf("connect to test PostgreSQL (%s): %v", EnvDatabaseURL, err)
	}
	defer admin.Close(context.Background())
	tmpl := "template0"
	if migrated {
		tmpl, err = ensureTemplate(ctx, admin, adminURL)
		if err != nil {
			tb.Fatalf("test template: %v", err)
		}
	}
	name := "payments_test_" + randomSuffix()
	for attempt := 0; ; attempt++ {
		_, err = admin.Exec(ctx, "CREATE DATABASE "+name+" TEMPLATE "+tmpl)
		if err == nil {
			break
		}
		// 55006: the template is being accessed by another session (the
		// moment of the rename, or a concurrent clone on some versions).
		if sqlState(err) != "55006" || attempt+1 >= CreateAttemptsMax {
			tb.Fatalf("create test database: %v", err)
		}
		time.Sleep(time.Duration(20+attempt*10) * time.Millisecond)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, adminURL)
		if err != nil {
			tb.Logf("drop %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			tb.Logf("drop %s: %v", name, err)
		}
	})
	dsn, err := withDatabase(adminURL, name)
	if err != nil {
		tb.Fatal(err)
	}
	return dsn
}

// NewPool returns a pool on a fresh database from NewDatabase, closed when
// the test ends.
func NewPool(tb testing.TB) *pgxpool.Pool {
	tb.Helper()
	dsn := NewDatabase(tb)
	pool, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		tb.Fatalf("connect test database: %v", err)
	}
	tb.Cleanup(pool.Close)
	return pool
}

// KeyPrefix returns a Redis key prefix unique to this test, so tests share
// one Redis without seeing each other's keys.
func KeyPrefix(tb testing.TB) string {
	tb.Helper()
	n := strings.NewReplacer("/", "_", " ", "_").Replace(tb.Name())
	if len(n) > 40 {
		n = n[:40]
	}
	return "t:" + n + ":" + randomSuffix()[:8] + ":"
}

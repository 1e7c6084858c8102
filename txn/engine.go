package txn

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Engine is the database engine behind a pool.
type Engine int

// Engines the service runs on. The zero value is EngineUnknown.
const (
	EngineUnknown Engine = iota
	EnginePostgreSQL
	EngineCockroachDB
)

// String returns the engine's name, suitable for logs and metric labels.
func (e Engine) String() string {
	switch e {
	case EnginePostgreSQL:
		return "postgresql"
	case EngineCockroachDB:
		return "cockroachdb"
	default:
		return "unknown"
	}
}

// engineFromVersion maps the text of SELECT version() to an Engine. Both
// engines speak the PostgreSQL protocol, so anything that is not CockroachDB
// is treated as PostgreSQL.
func engineFromVersion(version string) Engine {
	if strings.Contains(version, "CockroachDB") {
		return EngineCockroachDB
	}
	return EnginePostgreSQL
}

// DetectEngine asks the server behind pool which engine it is.
func DetectEngine(ctx context.Context, pool *pgxpool.Pool) (Engine, error) {
	var version string
	if err := pool.QueryRow(ctx, "SELECT version()").Scan(&version); err != nil {
		return EngineUnknown, fmt.Errorf("detect engine: %w", err)
	}
	return engineFromVersion(version), nil
}

package payments

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// EventIDLengthMax bounds a processor's notification ID.
const EventIDLengthMax = 255

// firstDelivery records a processor notification's ID inside the
// transaction that applies it, and reports whether this is its first
// delivery. Without an ID every delivery is applied (the transition table
// still makes a repeat a no-op).
func firstDelivery(ctx context.Context, tx pgx.Tx, tenantID uuid.UUID, proc, eventID string) (bool, error) {
	if eventID == "" {
		return true, nil
	}
	if len(eventID) > EventIDLengthMax {
		return false, fmt.Errorf("processor event ID of %d bytes", len(eventID))
	}
	tag, err := tx.Exec(ctx, `INSERT INTO processor_events (tenant_id, processor, event_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
		tenantID, proc, eventID)
	if err != nil {
		return false, fmt.Errorf("record processor event: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

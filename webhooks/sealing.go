package webhooks

import (
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/payments-api/payments/idempotency"
	"github.com/payments-api/payments/secretbox"
)

// sealer keeps signing secrets sealed at rest when an encryption key is
// configured (a nil box stores them in the clear, for deployments without
// PAYMENTS_ENCRYPTION_KEY). Each value is bound to its tenant and its role,
// so a sealed secret copied to another row does not open.
type sealer struct{ box *secretbox.Box }

func additionalData(tenantID uuid.UUID, role string) []byte {
	return []byte("webhook_endpoint." + role + ":" + tenantID.String())
}

// seal returns the two column values of a secret: the clear text or the
// sealed bytes, one of them nil.
func (s sealer) seal(tenantID uuid.UUID, role string, sec Secret) (*string, []byte, error) {
	if s.box == nil {
		clear := sec.Reveal()
		return &clear, nil, nil
	}
	b, err := s.box.Seal([]byte(sec.Reveal()), additionalData(tenantID, role))
	if err != nil {
		return nil, nil, fmt.Errorf("seal webhook secret: %w", err)
	}
	return nil, b, nil
}

// sealAnswer seals the stored idempotent answer of a request whose answer
// shows a signing secret, like the secret itself: sealed when a key is
// configured, in the clear (as the secret is) otherwise.
func (s sealer) sealAnswer(r *idempotency.Request) {
	if r != nil && s.box != nil {
		r.SealAnswer(s.box)
	}
}

// errNoKey is returned for a sealed secret when no key is configured.
var errNoKey = errors.New("webhook secret is sealed but PAYMENTS_ENCRYPTION_KEY is not set")

// open returns the secret stored in either column.
func (s sealer) open(tenantID uuid.UUID, role string, clear *string, sealed []byte) (Secret, error) {
	if clear != nil {
		return Secret(*clear), nil
	}
	if sealed == nil {
		return "", nil
	}
	if s.box == nil {
		return "", errNoKey
	}
	b, err := s.box.Open(sealed, additionalData(tenantID, role))
	if err != nil {
		return "", fmt.Errorf("open webhook secret: %w", err)
	}
	return Secret(b), nil
}

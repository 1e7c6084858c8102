package loadtest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
)

// Location risk rules for the rules-on measurement (-risk-rules): each
// tenant gets one velocity and one impossible_travel rule, and every
// created payment carries a location and a customer, so that both rules
// are evaluated on every creation. Their thresholds are out of reach of
// the load (all of a tenant's payments are at one place), so the figure
// is the cost of evaluating them, not of reviewing payments.
var (
	riskRuleBodies = [][]byte{
		[]byte(`{"kind": "velocity", "action": "review", "geohash_precision": 6, "max_payments": 100000, "window_seconds": 60}`),
		[]byte(`{"kind": "impossible_travel", "action": "review", "speed_kmh": 900}`),
	}
	bodyCreateLocated       = []byte(`{"amount": 2000, "currency": "usd", "payment_method": "pm_card_visa", "customer": "cus_load", "location": {"lat": 52.520008, "lon": 13.404954}}`)
	bodyCreateManualLocated = []byte(`{"amount": 2000, "currency": "usd", "payment_method": "pm_card_visa", "capture_method": "manual", "customer": "cus_load", "location": {"lat": 52.520008, "lon": 13.404954}}`)
)

// CreateRiskRules gives every tenant the two rules of riskRuleBodies.
func CreateRiskRules(ctx context.Context, c *http.Client, base string, tenants []Tenant) error {
	for _, t := range tenants {
		for _, body := range riskRuleBodies {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/risk_rules", bytes.NewReader(body))
			if err != nil {
				return err
			}
			req.Header.Set("Authorization", "Bearer "+t.Secret)
			req.Header.Set("Content-Type", "application/json")
			resp, err := c.Do(req)
			if err != nil {
				return fmt.Errorf("create risk rule of %s: %w", t.ID, err)
			}
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				return fmt.Errorf("create risk rule of %s: %d %s", t.ID, resp.StatusCode, snippet(b))
			}
		}
	}
	return nil
}

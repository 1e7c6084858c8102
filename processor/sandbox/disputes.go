package sandbox

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"strings"
	"time"

	"github.com/payments-api/payments/errcode"
	"github.com/payments-api/payments/processor"
)

// Disputes in the sandbox follow Stripe's test mode:
//
//   - A charge of PaymentMethodCreateDispute is disputed DisputeDelay after
//     its capture: the dispute opens as needs_response, reason fraudulent,
//     evidence due in 7 days, with its funds withdrawn and DisputeFee taken.
//   - SubmitDisputeEvidence puts it under review. If any evidence text
//     contains DisputeWinningEvidence, the dispute is won DisputeDelay later
//     and its amount is reinstated (the fee is not); if any contains
//     DisputeLosingEvidence (and none the winning text), it is lost. With
//     neither it stays under review.
//   - CloseDispute (accepting) loses it at once.
//
// The sandbox keeps no record of disputes: the notifications are timers of
// this process (a restart forgets the ones not yet sent), and its answers
// are derived from the request.
const (
	// DisputeWinningEvidence in an evidence text wins the dispute.
	DisputeWinningEvidence = "winning_evidence"
	// DisputeLosingEvidence in an evidence text loses the dispute.
	DisputeLosingEvidence = "losing_evidence"
	// DisputeDelayDefault is Options.DisputeDelay in DefaultOptions.
	DisputeDelayDefault = 5 * time.Second
	// DisputeFeeDefault is Options.DisputeFee in DefaultOptions: 15.00
	// in a two-decimal currency, as Stripe charges.
	DisputeFeeDefault = 1500
	// DisputeEvidenceWindow is how long evidence is due after a dispute
	// opens.
	DisputeEvidenceWindow = 7 * 24 * time.Hour
	// DisputeAttemptsMax bounds the deliveries of one dispute notification.
	DisputeAttemptsMax = 6
	// disputeRefPrefix starts the sandbox's dispute IDs.
	disputeRefPrefix = "sbx_dp_"
)

var _ processor.Disputes = (*Sandbox)(nil)

// disputeRef derives the dispute's ID from the disputed charge's payment,
// so that one charge has one dispute however often it is scheduled.
func DisputeRef(tenantID, paymentID string) string {
	h := sha256.Sum256([]byte(tenantID + "/" + paymentID))
	return disputeRefPrefix + hex.EncodeToString(h[:12])
}

// scheduleDispute opens the dispute of the captured charge st, known by
// ref, after Options.DisputeDelay.
func (s *Sandbox) scheduleDispute(ref string, st state) {
	if s.opts.DisputeHandler == nil {
		return
	}
	dref := DisputeRef(st.tenantID, st.paymentID)
	now := s.now()
	u := processor.DisputeUpdate{
		TenantID: st.tenantID, PaymentID: st.paymentID, PaymentRef: ref,
		Dispute: processor.Dispute{
			Ref: dref, Status: processor.DisputeNeedsResponse, Amount: st.captured, Currency: string(st.currency),
			Reason: "fraudulent", EvidenceDueBy: now.Add(s.opts.DisputeDelay + DisputeEvidenceWindow).Truncate(time.Second),
			Withdrawal: &processor.DisputeFunds{Ref: dref + "_withdrawal", Amount: st.captured, Fee: s.opts.DisputeFee, FeeKnown: true},
		},
		EventID: dref + ":created", Funds: processor.FundsWithdrawn,
	}
	s.later(dref+":created", u)
}

// later delivers u through the DisputeHandler after Options.DisputeDelay,
// once per key while the timer is pending. A delivery the handler refuses
// (the payment's own outcome not recorded yet, a database that did not
// answer) is tried again, up to DisputeAttemptsMax times in all, each wait
// twice the last, as a processor redelivers its webhooks.
func (s *Sandbox) later(key string, u processor.DisputeUpdate) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	if _, ok := s.disputeTimers[key]; ok {
		return
	}
	if len(s.disputeTimers) >= SettlementsPendingMax {
		s.logger.Warn("sandbox dispute timers at their limit; the dispute notification is dropped",
			slog.String("payment_id", u.PaymentID), slog.Int("limit", SettlementsPendingMax))
		return
	}
	s.armDispute(key, u, 1, max(s.opts.DisputeDelay, time.Millisecond))
}

// armDispute starts the timer of attempt n of key, after wait; s.mu is held.
func (s *Sandbox) armDispute(key string, u processor.DisputeUpdate, n int, wait time.Duration) {
	var t *time.Timer
	t = time.AfterFunc(wait, func() {
		s.mu.Lock()
		if s.closed || s.disputeTimers[key] != t {
			s.mu.Unlock()
			return
		}
		delete(s.disputeTimers, key)
		s.running.Add(1)
		s.mu.Unlock()
		defer s.running.Done()
		if u.EventCreated.IsZero() {
			u.EventCreated = s.now()
		}
		ctx, cancel := context.WithTimeout(s.updateCtx, UpdateDurationMax)
		defer cancel()
		err := s.opts.DisputeHandler(ctx, u)
		if err == nil {
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if n < DisputeAttemptsMax && !s.closed {
			if _, ok := s.disputeTimers[key]; !ok {
				s.armDispute(key, u, n+1, 2*wait)
				return
			}
		}
		s.logger.Error("sandbox dispute update failed",
			slog.String("payment_id", u.PaymentID), slog.String("tenant_id", u.TenantID), slog.Int("attempt", n), slog.Any("error", err))
	})
	s.disputeTimers[key] = t
}

func checkDisputeRequest(req processor.DisputeRequest) error {
	if !strings.HasPrefix(req.Ref, disputeRefPrefix) || req.Ref != DisputeRef(req.TenantID, req.PaymentID) {
		e := errcode.New(errcode.KindNotFound, errcode.CodeResourceMissing, "no such sandbox dispute")
		e.Param = "dispute"
		return e
	}
	return nil
}

// SubmitDisputeEvidence implements processor.Disputes: the dispute goes
// under review, and is won or lost later by the evidence's test texts.
func (s *Sandbox) SubmitDisputeEvidence(ctx context.Context, req processor.DisputeRequest, evidence processor.DisputeEvidence) (processor.Dispute, error) {
	if err := s.roundTrip(ctx, "submit_dispute_evidence"); err != nil {
		return processor.Dispute{}, err
	}
	if err := checkDisputeRequest(req); err != nil {
		return processor.Dispute{}, err
	}
	d := processor.Dispute{Ref: req.Ref, Status: processor.DisputeUnderReview, Amount: req.Amount, Currency: req.Currency}
	var won, lost bool
	for _, v := range evidence {
		won = won || strings.Contains(v, DisputeWinningEvidence)
		lost = lost || strings.Contains(v, DisputeLosingEvidence)
	}
	if won || lost {
		closed := d
		closed.Status = processor.DisputeLost
		key := req.Ref + ":lost"
		if won {
			closed.Status = processor.DisputeWon
			closed.Reinstatement = &processor.DisputeFunds{Ref: req.Ref + "_reinstatement", Amount: req.Amount}
			key = req.Ref + ":won"
		}
		u := processor.DisputeUpdate{TenantID: req.TenantID, PaymentID: req.PaymentID, Dispute: closed, EventID: key}
		if won {
			u.Funds = processor.FundsReinstated
		}
		s.later(key, u)
	}
	return d, nil
}

// CloseDispute implements processor.Disputes: accepted, the dispute is
// lost at once.
func (s *Sandbox) CloseDispute(ctx context.Context, req processor.DisputeRequest) (processor.Dispute, error) {
	if err := s.roundTrip(ctx, "close_dispute"); err != nil {
		return processor.Dispute{}, err
	}
	if err := checkDisputeRequest(req); err != nil {
		return processor.Dispute{}, err
	}
	return processor.Dispute{Ref: req.Ref, Status: processor.DisputeLost, Amount: req.Amount, Currency: req.Currency}, nil
}

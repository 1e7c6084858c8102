package payments

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// PageLimitDefault is the page size of the iterators when the caller sets
// no limit; the API allows 1 to 100.
const PageLimitDefault = 100

// PagesMax bounds how many pages one iteration reads, so that a server
// that always answers has_more cannot keep a caller looping forever.
const PagesMax = 100_000

// decode reads one answer: the 2xx body into T, or the typed error.
func decode[T any](res *http.Response, err error) (*T, error) {
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, fmt.Errorf("payments: read answer: %w", err)
	}
	if res.StatusCode >= 400 {
		return nil, ErrorFrom(res.StatusCode, res.Header, body)
	}
	v := new(T)
	if err := json.Unmarshal(body, v); err != nil {
		return nil, fmt.Errorf("payments: decode %d answer: %w", res.StatusCode, err)
	}
	return v, nil
}

// page is every list answer: {"data": [...], "has_more": bool}.
type page[T any] struct {
	Data    []T  `json:"data"`
	HasMore bool `json:"has_more"`
}

// paginate walks a list newest first, page after page, from first (the
// caller's starting_after, nil for the newest) then by starting_after the
// last object of the previous page. The iteration stops at the first
// error, which it yields.
func paginate[T any](first *string, fetch func(startingAfter *string) (*http.Response, error), id func(*T) string) iter.Seq2[*T, error] {
	return func(yield func(*T, error) bool) {
		after := first
		for range PagesMax {
			p, err := decode[page[T]](fetch(after))
			if err != nil {
				yield(nil, err)
				return
			}
			for i := range p.Data {
				if !yield(&p.Data[i], nil) {
					return
				}
			}
			if !p.HasMore || len(p.Data) == 0 {
				return
			}
			last := id(&p.Data[len(p.Data)-1])
			after = &last
		}
		yield(nil, fmt.Errorf("payments: more than %d pages", PagesMax))
	}
}

func limitOr(l *int64) *int64 {
	if l != nil {
		return l
	}
	n := int64(PageLimitDefault)
	return &n
}

// AccountService reads the calling tenant's account.
type AccountService struct{ c *Client }

// Get answers the account of the API key.
func (s *AccountService) Get(ctx context.Context, opts ...CallOption) (*Account, error) {
	ctx = withCallOptions(ctx, opts)
	return decode[Account](s.c.raw.GetAccount(ctx))
}

// PaymentService creates, reads, captures, cancels and lists payments.
type PaymentService struct{ c *Client }

// Create creates a payment. A decline answers a *CardError whose Payment
// names the failed payment. The call carries a fresh Idempotency-Key
// (or WithIdempotencyKey's) across its retries.
func (s *PaymentService) Create(ctx context.Context, body CreatePaymentJSONRequestBody, opts ...CallOption) (*Payment, error) {
	ctx = withCallOptions(ctx, opts)
	return decode[Payment](s.c.raw.CreatePayment(ctx, nil, body))
}

// Get answers one payment.
func (s *PaymentService) Get(ctx context.Context, id string, opts ...CallOption) (*Payment, error) {
	ctx = withCallOptions(ctx, opts)
	return decode[Payment](s.c.raw.GetPayment(ctx, id))
}

// Capture captures a requires_capture payment, in full when body.Amount is nil.
func (s *PaymentService) Capture(ctx context.Context, id string, body CapturePaymentJSONRequestBody, opts ...CallOption) (*Payment, error) {
	ctx = withCallOptions(ctx, opts)
	return decode[Payment](s.c.raw.CapturePayment(ctx, id, nil, body))
}

// Cancel cancels a payment that is not yet captured.
func (s *PaymentService) Cancel(ctx context.Context, id string, opts ...CallOption) (*Payment, error) {
	ctx = withCallOptions(ctx, opts)
	return decode[Payment](s.c.raw.CancelPayment(ctx, id, nil))
}

// CompleteSandboxAction plays the customer completing 3-D Secure for a
// payment in requires_action (sandbox processor only): redirectURL is the
// payment's next_action.redirect_url.
func (s *PaymentService) CompleteSandboxAction(ctx context.Context, redirectURL string, opts ...CallOption) error {
	ctx = withCallOptions(ctx, opts)
	ref := redirectURL[strings.LastIndexByte(redirectURL, '/')+1:]
	_, err := decode[json.RawMessage](s.c.raw.SandboxCompleteAction(ctx, ref))
	return err
}

// List iterates over the payments that match params, newest first, every
// page. params.StartingAfter starts the walk; params.Limit is the page size.
func (s *PaymentService) List(ctx context.Context, params ListPaymentsParams, opts ...CallOption) iter.Seq2[*Payment, error] {
	ctx = withCallOptions(ctx, opts)
	params.Limit = limitOr(params.Limit)
	return paginate(params.StartingAfter, func(after *string) (*http.Response, error) {
		p := params
		p.StartingAfter = after
		return s.c.raw.ListPayments(ctx, &p)
	}, func(p *Payment) string { return p.Id })
}

// RefundService creates, reads and lists refunds.
type RefundService struct{ c *Client }

// Create refunds a payment, in full when body.Amount is nil.
func (s *RefundService) Create(ctx context.Context, body CreateRefundJSONRequestBody, opts ...CallOption) (*Refund, error) {
	ctx = withCallOptions(ctx, opts)
	return decode[Refund](s.c.raw.CreateRefund(ctx, nil, body))
}

// Get answers one refund.
func (s *RefundService) Get(ctx context.Context, id string, opts ...CallOption) (*Refund, error) {
	ctx = withCallOptions(ctx, opts)
	return decode[Refund](s.c.raw.GetRefund(ctx, id))
}

// List iterates over the refunds that match params, newest first.
func (s *RefundService) List(ctx context.Context, params ListRefundsParams, opts ...CallOption) iter.Seq2[*Refund, error] {
	ctx = withCallOptions(ctx, opts)
	params.Limit = limitOr(params.Limit)
	return paginate(params.StartingAfter, func(after *string) (*http.Response, error) {
		p := params
		p.StartingAfter = after
		return s.c.raw.ListRefunds(ctx, &p)
	}, func(r *Refund) string { return r.Id })
}

// EventService reads the account's events.
type EventService struct{ c *Client }

// Get answers one event.
func (s *EventService) Get(ctx context.Context, id string, opts ...CallOption) (*Event, error) {
	ctx = withCallOptions(ctx, opts)
	return decode[Event](s.c.raw.GetEvent(ctx, id))
}

// List iterates over the events that match params, newest first.
func (s *EventService) List(ctx context.Context, params ListEventsParams, opts ...CallOption) iter.Seq2[*Event, error] {
	ctx = withCallOptions(ctx, opts)
	params.Limit = limitOr(params.Limit)
	return paginate(params.StartingAfter, func(after *string) (*http.Response, error) {
		p := params
		p.StartingAfter = after
		return s.c.raw.ListEvents(ctx, &p)
	}, func(e *Event) string { return e.Id })
}

// BalanceService reads the balance and its transactions.
type BalanceService struct{ c *Client }

// Get answers the balance per currency.
func (s *BalanceService) Get(ctx context.Context, opts ...CallOption) (*Balance, error) {
	ctx = withCallOptions(ctx, opts)
	return decode[Balance](s.c.raw.GetBalance(ctx, &GetBalanceParams{}))
}

// GetAt answers the balance per currency as it was at a past instant:
// every movement booked at or before it.
func (s *BalanceService) GetAt(ctx context.Context, at time.Time, opts ...CallOption) (*Balance, error) {
	ctx = withCallOptions(ctx, opts)
	a := strconv.FormatInt(at.Unix(), 10)
	return decode[Balance](s.c.raw.GetBalance(ctx, &GetBalanceParams{At: &a}))
}

// ListTransactions iterates over the balance transactions, newest first.
func (s *BalanceService) ListTransactions(ctx context.Context, params ListBalanceTransactionsParams, opts ...CallOption) iter.Seq2[*BalanceTransaction, error] {
	ctx = withCallOptions(ctx, opts)
	params.Limit = limitOr(params.Limit)
	return paginate(params.StartingAfter, func(after *string) (*http.Response, error) {
		p := params
		p.StartingAfter = after
		return s.c.raw.ListBalanceTransactions(ctx, &p)
	}, func(t *BalanceTransaction) string { return t.Id })
}

// WebhookEndpointService registers and manages webhook endpoints.
type WebhookEndpointService struct{ c *Client }

// Create registers an endpoint; the answer shows its signing secret once.
func (s *WebhookEndpointService) Create(ctx context.Context, body CreateWebhookEndpointJSONRequestBody, opts ...CallOption) (*WebhookEndpoint, error) {
	ctx = withCallOptions(ctx, opts)
	return decode[WebhookEndpoint](s.c.raw.CreateWebhookEndpoint(ctx, nil, body))
}

// Get answers one endpoint (without its secret).
func (s *WebhookEndpointService) Get(ctx context.Context, id string, opts ...CallOption) (*WebhookEndpoint, error) {
	ctx = withCallOptions(ctx, opts)
	return decode[WebhookEndpoint](s.c.raw.GetWebhookEndpoint(ctx, id))
}

// Delete removes an endpoint; no delivery is sent to it afterwards.
func (s *WebhookEndpointService) Delete(ctx context.Context, id string, opts ...CallOption) error {
	ctx = withCallOptions(ctx, opts)
	_, err := decode[json.RawMessage](s.c.raw.DeleteWebhookEndpoint(ctx, id, nil))
	return err
}

// RotateSecret gives the endpoint a new signing secret; the old one keeps
// signing beside it for 24 hours.
func (s *WebhookEndpointService) RotateSecret(ctx context.Context, id string, opts ...CallOption) (*WebhookEndpoint, error) {
	ctx = withCallOptions(ctx, opts)
	return decode[WebhookEndpoint](s.c.raw.RotateWebhookEndpointSecret(ctx, id, nil))
}

// List iterates over the endpoints, newest first.
func (s *WebhookEndpointService) List(ctx context.Context, params ListWebhookEndpointsParams, opts ...CallOption) iter.Seq2[*WebhookEndpoint, error] {
	ctx = withCallOptions(ctx, opts)
	params.Limit = limitOr(params.Limit)
	return paginate(params.StartingAfter, func(after *string) (*http.Response, error) {
		p := params
		p.StartingAfter = after
		return s.c.raw.ListWebhookEndpoints(ctx, &p)
	}, func(e *WebhookEndpoint) string { return e.Id })
}

package api

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/google/uuid"

	"github.com/payments-api/payments/errcode"
	"github.com/payments-api/payments/ids"
	"github.com/payments-api/payments/listing"
	"github.com/payments-api/payments/payments"
)

// IdempotencyHeader documents and carries the Idempotency-Key header of
// every POST.
type IdempotencyHeader struct {
	IdempotencyKey string `header:"Idempotency-Key" maxLength:"255" doc:"Makes the request safe to retry: the same key with the same request answers the stored result (with Idempotent-Replayed: true) for at least 24 hours; with a different request it answers 400 (idempotency_error); while the first is still running, 409." example:"order-1234-attempt-1"`
}

type locationInput struct {
	Lat float64 `json:"lat" minimum:"-90" maximum:"90" doc:"Latitude in degrees." example:"52.52"`
	Lon float64 `json:"lon" minimum:"-180" maximum:"180" doc:"Longitude in degrees." example:"13.405"`
}

type createPaymentInput struct {
	IdempotencyHeader
	Body struct {
		Amount        int64             `json:"amount" minimum:"1" doc:"Amount in the currency's minor unit: 2000 is 20.00 usd, 2000 is 2000 jpy. At most 99999999 by default." example:"2000"`
		Currency      string            `json:"currency" minLength:"3" maxLength:"3" doc:"Three-letter ISO 4217 code, lowercase." example:"usd"`
		PaymentMethod string            `json:"payment_method" minLength:"1" maxLength:"255" doc:"A processor token, such as pm_card_visa. Never card data: a request that carries a card number is refused." example:"pm_card_visa"`
		CaptureMethod string            `json:"capture_method,omitempty" enum:"automatic,manual" doc:"automatic (the default when absent) captures at once; manual authorizes and waits for a capture call." example:"automatic"`
		Description   *string           `json:"description,omitempty" maxLength:"1000" doc:"Your description of the payment." example:"Order 1234"`
		Customer      *string           `json:"customer,omitempty" minLength:"1" maxLength:"255" doc:"Your own reference of the customer, for filtering." example:"cus_8812"`
		Metadata      map[string]string `json:"metadata,omitempty" maxProperties:"50" doc:"Up to 50 key-value pairs; keys up to 40 characters, values up to 500." example:"{\"order_id\":\"1234\"}"`
		Location      *locationInput    `json:"location,omitempty" doc:"Where the payment is made; stored with its geohash."`
	}
}

type paymentOutput struct {
	Body payments.View
}

// PaymentPath names a payment in the path.
type PaymentPath struct {
	ID string `path:"id" maxLength:"64" doc:"The payment's ID." example:"pay_06h17frpsdzff29kp8gyg5mc4w"`
}

type capturePaymentInput struct {
	IdempotencyHeader
	PaymentPath
	Body *struct {
		AmountToCapture int64 `json:"amount_to_capture,omitempty" minimum:"1" doc:"Capture less than authorized; the rest is released. All of it when absent." example:"1500"`
	}
}

type cancelPaymentInput struct {
	IdempotencyHeader
	PaymentPath
}

type listPaymentsInput struct {
	ListQuery
	Status     string `query:"status" enum:"pending,requires_action,requires_capture,succeeded,failed,canceled" doc:"Only payments in this status."`
	Customer   string `query:"customer" maxLength:"255" doc:"Only payments of this customer reference."`
	CreatedGTE int64  `query:"created[gte]" minimum:"0" doc:"Only payments created at or after this Unix time."`
	CreatedLTE int64  `query:"created[lte]" minimum:"0" doc:"Only payments created at or before this Unix time."`
}

// ListQuery is the list contract's query parameters, embedded in every list
// operation's input (exported so that Huma sees the embedded fields).
type ListQuery struct {
	Limit         int    `query:"limit" minimum:"1" maximum:"100" default:"10" doc:"How many objects to answer, 1 to 100."`
	StartingAfter string `query:"starting_after" maxLength:"64" doc:"Cursor for the next page: the ID of the last object of the current page."`
	EndingBefore  string `query:"ending_before" maxLength:"64" doc:"Cursor for the previous page: the ID of the first object of the current page."`
}

func (q ListQuery) page(prefix string) (listing.Page, error) {
	p := listing.Page{Limit: q.Limit}
	parse := func(param, s string) (*uuid.UUID, error) {
		if s == "" {
			return nil, nil
		}
		id, ok := ids.Parse(prefix, s)
		if !ok {
			return nil, errcode.Invalid(errcode.CodeParameterInvalid, param, "%s must be an ID starting with %s", param, prefix)
		}
		return &id, nil
	}
	var err error
	if p.StartingAfter, err = parse("starting_after", q.StartingAfter); err != nil {
		return p, err
	}
	if p.EndingBefore, err = parse("ending_before", q.EndingBefore); err != nil {
		return p, err
	}
	return p, p.Validate()
}

// createdRange turns the created[gte] and created[lte] filters (Unix
// seconds, zero when absent) into the instants a list reads between: the
// upper bound takes in its whole second.
func createdRange(gte, lte int64) (from, to *time.Time) {
	if gte > 0 {
		t := time.Unix(gte, 0)
		from = &t
	}
	if lte > 0 {
		t := time.Unix(lte, 0).Add(time.Second - time.Nanosecond)
		to = &t
	}
	return from, to
}

type paymentList struct {
	Object  string          `json:"object" enum:"list"`
	Data    []payments.View `json:"data"`
	HasMore bool            `json:"has_more" doc:"Whether more objects follow in the direction of travel."`
}

type paymentListOutput struct {
	Body paymentList
}

func paymentID(s string) (uuid.UUID, error) { return objectID(ids.PrefixPayment, "payment", s) }

func paymentView(v any) any { return v.(payments.Payment).ToView() }

func registerPayments(api huma.API, s *Server) {
	tags := []string{"Payments"}
	huma.Register(api, operation(huma.Operation{
		OperationID: opCreatePayment,
		Method:      http.MethodPost,
		Path:        "/v1/payments",
		Summary:     "Create a payment",
		Description: "Creates a payment and confirms it with the processor in one call. With capture_method automatic a successful payment answers status succeeded; " +
			"with manual it answers requires_capture. A declined card answers 402 with code card_declined, the decline_code and the payment's ID; the payment is kept as failed. " +
			"A card that needs 3-D Secure answers requires_action with next_action. Send an Idempotency-Key to retry safely.",
		Tags:          tags,
		DefaultStatus: http.StatusCreated,
	}, schemeSecretKey, http.StatusPaymentRequired, http.StatusConflict, http.StatusServiceUnavailable), handle(func(ctx context.Context, in *createPaymentInput) (*paymentOutput, error) {
		storeAs(ctx, http.StatusCreated, paymentView)
		b := in.Body
		params := payments.CreateParams{
			Amount: b.Amount, Currency: b.Currency, PaymentMethod: b.PaymentMethod, CaptureMethod: b.CaptureMethod,
			Description: b.Description, Customer: b.Customer, Metadata: b.Metadata,
		}
		if b.Location != nil {
			params.Location = &struct{ Lat, Lon float64 }{b.Location.Lat, b.Location.Lon}
		}
		params.Risk = riskVerdict(ctx)
		p, err := s.cfg.Payments.Create(ctx, principal(ctx).TenantID, params)
		if err != nil {
			return nil, err
		}
		return &paymentOutput{Body: p.ToView()}, nil
	}))

	huma.Register(api, operation(huma.Operation{
		OperationID: "get-payment",
		Method:      http.MethodGet,
		Path:        "/v1/payments/{id}",
		Summary:     "Retrieve a payment",
		Description: "Answers a payment. Reads go through a cache that every change updates, so a read after a change never answers the older state.",
		Tags:        tags,
	}, schemeSecretKey, http.StatusNotFound), handle(func(ctx context.Context, in *PaymentPath) (*paymentOutput, error) {
		id, err := paymentID(in.ID)
		if err != nil {
			return nil, err
		}
		p, err := s.cfg.Payments.Get(ctx, principal(ctx).TenantID, id)
		if err != nil {
			return nil, err
		}
		return &paymentOutput{Body: p.ToView()}, nil
	}))

	huma.Register(api, operation(huma.Operation{
		OperationID: "list-payments",
		Method:      http.MethodGet,
		Path:        "/v1/payments",
		Summary:     "List payments",
		Description: "Lists payments newest first, with cursor pagination and filters by status, customer and creation time.",
		Tags:        tags,
	}, schemeSecretKey, http.StatusBadRequest), handle(func(ctx context.Context, in *listPaymentsInput) (*paymentListOutput, error) {
		page, err := in.page(ids.PrefixPayment)
		if err != nil {
			return nil, err
		}
		lp := payments.ListParams{Page: page, Status: payments.Status(in.Status), Customer: in.Customer}
		lp.CreatedGTE, lp.CreatedLTE = createdRange(in.CreatedGTE, in.CreatedLTE)
		ps, more, err := s.cfg.Payments.List(ctx, principal(ctx).TenantID, lp)
		if err != nil {
			return nil, err
		}
		out := &paymentListOutput{Body: paymentList{Object: "list", Data: []payments.View{}, HasMore: more}}
		for _, p := range ps {
			out.Body.Data = append(out.Body.Data, p.ToView())
		}
		return out, nil
	}))

	huma.Register(api, operation(huma.Operation{
		OperationID: "capture-payment",
		Method:      http.MethodPost,
		Path:        "/v1/payments/{id}/capture",
		Summary:     "Capture a payment",
		Description: "Captures a payment in requires_capture, all of it or amount_to_capture (the rest is released). Any other status answers 409 payment_invalid_state.",
		Tags:        tags,
	}, schemeSecretKey, http.StatusNotFound, http.StatusConflict, http.StatusServiceUnavailable), handle(func(ctx context.Context, in *capturePaymentInput) (*paymentOutput, error) {
		storeAs(ctx, http.StatusOK, paymentView)
		id, err := paymentID(in.ID)
		if err != nil {
			return nil, err
		}
		var amount int64
		if in.Body != nil {
			amount = in.Body.AmountToCapture
		}
		p, err := s.cfg.Payments.Capture(ctx, principal(ctx).TenantID, id, amount)
		if err != nil {
			return nil, err
		}
		return &paymentOutput{Body: p.ToView()}, nil
	}))

	huma.Register(api, operation(huma.Operation{
		OperationID: "cancel-payment",
		Method:      http.MethodPost,
		Path:        "/v1/payments/{id}/cancel",
		Summary:     "Cancel a payment",
		Description: "Cancels a payment that is not captured yet (requires_action, requires_capture, or pending at the processor). Other statuses answer 409 payment_invalid_state.",
		Tags:        tags,
	}, schemeSecretKey, http.StatusNotFound, http.StatusConflict, http.StatusServiceUnavailable), handle(func(ctx context.Context, in *cancelPaymentInput) (*paymentOutput, error) {
		storeAs(ctx, http.StatusOK, paymentView)
		id, err := paymentID(in.ID)
		if err != nil {
			return nil, err
		}
		p, err := s.cfg.Payments.Cancel(ctx, principal(ctx).TenantID, id)
		if err != nil {
			return nil, err
		}
		return &paymentOutput{Body: p.ToView()}, nil
	}))
}

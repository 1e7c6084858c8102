package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/payments-api/payments/ids"
	"github.com/payments-api/payments/payments"
)

type createPayoutInput struct {
	IdempotencyHeader
	Body struct {
		Amount      int64             `json:"amount" minimum:"1" doc:"Amount to pay out, in the currency's minor unit; at most the available balance in that currency." example:"5000"`
		Currency    string            `json:"currency" minLength:"3" maxLength:"3" doc:"Three-letter ISO 4217 code, lowercase: the balance the payout is taken from." example:"usd"`
		Description *string           `json:"description,omitempty" maxLength:"1000" doc:"Your description of the payout. In the sandbox, a description containing sandbox_payout_fails makes the payout fail once in transit." example:"Weekly payout"`
		Metadata    map[string]string `json:"metadata,omitempty" maxProperties:"50" doc:"Up to 50 key-value pairs; keys up to 40 characters, values up to 500." example:"{\"week\":\"2026-48\"}"`
	}
}

type payoutOutput struct {
	Body payments.PayoutView
}

// PayoutPath names a payout in the path.
type PayoutPath struct {
	ID string `path:"id" maxLength:"64" doc:"The payout's ID." example:"po_06h17frpsdzff29kp8gyg5mc4w"`
}

type cancelPayoutInput struct {
	IdempotencyHeader
	PayoutPath
}

type listPayoutsInput struct {
	ListQuery
	Status     string `query:"status" enum:"pending,in_transit,paid,failed,canceled" doc:"Only payouts in this status."`
	CreatedGTE int64  `query:"created[gte]" minimum:"0" doc:"Only payouts created at or after this Unix time." example:"1764000000"`
	CreatedLTE int64  `query:"created[lte]" minimum:"0" doc:"Only payouts created at or before this Unix time." example:"1764090000"`
}

type payoutList struct {
	Object  string                `json:"object" enum:"list"`
	Data    []payments.PayoutView `json:"data"`
	HasMore bool                  `json:"has_more" doc:"Whether more objects follow in the direction of travel."`
}

type payoutListOutput struct {
	Body payoutList
}

// PayoutAccountView is where a tenant's payouts go.
type PayoutAccountView struct {
	Object        string `json:"object" enum:"payout_account" doc:"Always payout_account."`
	Tenant        string `json:"tenant" doc:"The tenant." example:"ten_06f0kb9t5q3e3bq4b7bw0vq2rc"`
	StripeAccount string `json:"stripe_account" doc:"The Stripe connected account that receives the tenant's payouts." example:"acct_1Nv0FGQ9RKHgCVdK"`
}

type setPayoutAccountInput struct {
	IdempotencyHeader
	Tenant string `path:"tenant" maxLength:"64" doc:"The tenant's ID." example:"ten_06f0kb9t5q3e3bq4b7bw0vq2rc"`
	Body   struct {
		StripeAccount string `json:"stripe_account" minLength:"6" maxLength:"69" pattern:"^acct_[A-Za-z0-9]{1,64}$" doc:"The tenant's Stripe connected account (acct_ and 1 to 64 letters or digits), connected to the platform's Stripe account." example:"acct_1Nv0FGQ9RKHgCVdK"`
	}
}

type payoutAccountOutput struct {
	Body PayoutAccountView
}

func payoutView(v any) any { return v.(payments.Payout).ToView() }

// registerPayouts serves the payouts and the admin route of where a
// tenant's payouts go.
func registerPayouts(api huma.API, s *Server) {
	tags := []string{"Payouts"}
	huma.Register(api, operation(huma.Operation{
		OperationID: "create-payout",
		Method:      http.MethodPost,
		Path:        "/v1/payouts",
		Summary:     "Create a payout",
		Description: "Takes amount out of your available balance in currency and pays it out: to your bank through your Stripe connected account " +
			"(a Transfer to it, then a Payout on it), or nowhere in the sandbox. The payout answers pending and can be canceled until it is sent; " +
			"it then moves to in_transit and to paid, or to failed with the amount returned to the balance (events payout.created, payout.paid, " +
			"payout.failed, payout.canceled). An amount above the available balance answers 400 balance_insufficient; a balance below zero " +
			"(refunds or disputes took more than was left) answers 409 balance_negative. Concurrent payouts never overdraw the balance. " +
			"409 payout_destination_missing when payouts go to Stripe and your connected account is not set. Send an Idempotency-Key to retry safely.",
		Tags:          tags,
		DefaultStatus: http.StatusCreated,
	}, schemeSecretKey, http.StatusConflict, http.StatusServiceUnavailable), handle(func(ctx context.Context, in *createPayoutInput) (*payoutOutput, error) {
		storeAs(ctx, http.StatusCreated, payoutView)
		b := in.Body
		p, err := s.cfg.Payments.CreatePayout(ctx, principal(ctx).TenantID, payments.PayoutParams{
			Amount: b.Amount, Currency: b.Currency, Description: b.Description, Metadata: b.Metadata,
		})
		if err != nil {
			return nil, err
		}
		return &payoutOutput{Body: p.ToView()}, nil
	}))

	huma.Register(api, operation(huma.Operation{
		OperationID: "get-payout",
		Method:      http.MethodGet,
		Path:        "/v1/payouts/{id}",
		Summary:     "Retrieve a payout",
		Description: "Answers a payout with its status. Another tenant's payout answers 404.",
		Tags:        tags,
	}, schemeSecretKey, http.StatusNotFound), handle(func(ctx context.Context, in *PayoutPath) (*payoutOutput, error) {
		id, err := objectID(ids.PrefixPayout, "payout", in.ID)
		if err != nil {
			return nil, err
		}
		p, err := s.cfg.Payments.GetPayout(ctx, principal(ctx).TenantID, id)
		if err != nil {
			return nil, err
		}
		return &payoutOutput{Body: p.ToView()}, nil
	}))

	huma.Register(api, operation(huma.Operation{
		OperationID: "list-payouts",
		Method:      http.MethodGet,
		Path:        "/v1/payouts",
		Summary:     "List payouts",
		Description: "Lists payouts newest first, with cursor pagination and filters by status and creation time.",
		Tags:        tags,
	}, schemeSecretKey, http.StatusBadRequest), handle(func(ctx context.Context, in *listPayoutsInput) (*payoutListOutput, error) {
		page, err := in.page(ids.PrefixPayout)
		if err != nil {
			return nil, err
		}
		lp := payments.PayoutListParams{Page: page, Status: payments.PayoutStatus(in.Status)}
		lp.CreatedGTE, lp.CreatedLTE = createdRange(in.CreatedGTE, in.CreatedLTE)
		ps, more, err := s.cfg.Payments.ListPayouts(ctx, principal(ctx).TenantID, lp)
		if err != nil {
			return nil, err
		}
		out := &payoutListOutput{Body: payoutList{Object: "list", Data: []payments.PayoutView{}, HasMore: more}}
		for _, p := range ps {
			out.Body.Data = append(out.Body.Data, p.ToView())
		}
		return out, nil
	}))

	huma.Register(api, operation(huma.Operation{
		OperationID: "cancel-payout",
		Method:      http.MethodPost,
		Path:        "/v1/payouts/{id}/cancel",
		Summary:     "Cancel a payout",
		Description: "Cancels a pending payout that is not being sent yet; its amount returns to the available balance (event payout.canceled). " +
			"A payout that is being sent, in transit or finished answers 409 payout_invalid_state.",
		Tags: tags,
	}, schemeSecretKey, http.StatusNotFound, http.StatusConflict), handle(func(ctx context.Context, in *cancelPayoutInput) (*payoutOutput, error) {
		storeAs(ctx, http.StatusOK, payoutView)
		id, err := objectID(ids.PrefixPayout, "payout", in.ID)
		if err != nil {
			return nil, err
		}
		p, err := s.cfg.Payments.CancelPayout(ctx, principal(ctx).TenantID, id)
		if err != nil {
			return nil, err
		}
		return &payoutOutput{Body: p.ToView()}, nil
	}))

	admin := []string{"Admin"}
	huma.Register(api, operation(huma.Operation{
		OperationID: "admin-set-payout-account",
		Method:      http.MethodPost,
		Path:        "/v1/admin/tenants/{tenant}/payout_account",
		Summary:     "Set where a tenant's payouts go",
		Description: "Sets the tenant's Stripe connected account (acct_...), connected to the platform's Stripe account: each payout is a Transfer " +
			"to it, then a Payout on it to the tenant's bank. Setting it again replaces it for payouts created from then on. A value that is not a " +
			"connected account ID answers 400 parameter_invalid with param stripe_account.",
		Tags: admin,
	}, schemeAdminToken, http.StatusNotFound), handle(adminWrite(s, http.StatusOK, func(ctx context.Context, in *setPayoutAccountInput) (*payoutAccountOutput, error) {
		id, err := parseTenant(in.Tenant)
		if err != nil {
			return nil, err
		}
		if err := s.cfg.Payments.SetPayoutAccount(ctx, id, in.Body.StripeAccount); err != nil {
			return nil, err
		}
		return &payoutAccountOutput{Body: PayoutAccountView{Object: "payout_account", Tenant: in.Tenant, StripeAccount: in.Body.StripeAccount}}, nil
	})))
	huma.Register(api, operation(huma.Operation{
		OperationID: "admin-get-payout-account",
		Method:      http.MethodGet,
		Path:        "/v1/admin/tenants/{tenant}/payout_account",
		Summary:     "Retrieve where a tenant's payouts go",
		Description: "Answers the tenant's Stripe connected account; 404 when none is set.",
		Tags:        admin,
	}, schemeAdminToken, http.StatusNotFound), handle(func(ctx context.Context, in *tenantPath) (*payoutAccountOutput, error) {
		id, err := parseTenant(in.Tenant)
		if err != nil {
			return nil, err
		}
		acct, err := s.cfg.Payments.PayoutAccount(ctx, id)
		if err != nil {
			return nil, err
		}
		return &payoutAccountOutput{Body: PayoutAccountView{Object: "payout_account", Tenant: in.Tenant, StripeAccount: acct}}, nil
	}))
}

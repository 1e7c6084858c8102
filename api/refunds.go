package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/payments-api/payments/errcode"
	"github.com/payments-api/payments/ids"
	"github.com/payments-api/payments/payments"
)

type createRefundInput struct {
	IdempotencyHeader
	Body struct {
		Payment string  `json:"payment" minLength:"1" maxLength:"64" doc:"The payment to refund." example:"pay_06h17frpsdzff29kp8gyg5mc4w"`
		Amount  int64   `json:"amount,omitempty" minimum:"1" doc:"Amount to refund in minor units; everything that is left when absent." example:"500"`
		Reason  *string `json:"reason,omitempty" enum:"duplicate,fraudulent,requested_by_customer" doc:"Why you refund."`
	}
}

type refundOutput struct {
	Body payments.RefundView
}

type refundPath struct {
	ID string `path:"id" maxLength:"64" doc:"The refund's ID." example:"re_06h17frpsdzff29kp8gyg5mc4w"`
}

type listRefundsInput struct {
	ListQuery
	Payment string `query:"payment" maxLength:"64" doc:"Only refunds of this payment."`
}

type refundList struct {
	Object  string                `json:"object" enum:"list"`
	Data    []payments.RefundView `json:"data"`
	HasMore bool                  `json:"has_more"`
}

type refundListOutput struct {
	Body refundList
}

func refundView(v any) any { return v.(payments.Refund).ToView() }

func registerRefunds(api huma.API, s *Server) {
	tags := []string{"Refunds"}
	huma.Register(api, operation(huma.Operation{
		OperationID: "create-refund",
		Method:      http.MethodPost,
		Path:        "/v1/refunds",
		Summary:     "Create a refund",
		Description: "Refunds part or all of a succeeded payment. Several partial refunds are allowed; together they never exceed the captured amount, also when they race: " +
			"a refund that would exceed what is left answers 400 amount_exceeds_refundable. Fees are not returned.",
		Tags:          tags,
		DefaultStatus: http.StatusCreated,
	}, schemeSecretKey, http.StatusNotFound, http.StatusConflict, http.StatusServiceUnavailable), handle(func(ctx context.Context, in *createRefundInput) (*refundOutput, error) {
		storeAs(ctx, http.StatusCreated, refundView)
		pid, ok := ids.Parse(ids.PrefixPayment, in.Body.Payment)
		if !ok {
			e := errcode.NotFound("payment", in.Body.Payment)
			e.Param = "payment"
			return nil, e
		}
		r, err := s.cfg.Payments.CreateRefund(ctx, principal(ctx).TenantID, payments.CreateRefundParams{Payment: pid, Amount: in.Body.Amount, Reason: in.Body.Reason})
		if err != nil {
			return nil, err
		}
		return &refundOutput{Body: r.ToView()}, nil
	}))

	huma.Register(api, operation(huma.Operation{
		OperationID: "get-refund",
		Method:      http.MethodGet,
		Path:        "/v1/refunds/{id}",
		Summary:     "Retrieve a refund",
		Description: "Answers a refund with its status and amount. Another tenant's refund answers 404.",
		Tags:        tags,
	}, schemeSecretKey, http.StatusNotFound), handle(func(ctx context.Context, in *refundPath) (*refundOutput, error) {
		id, err := objectID(ids.PrefixRefund, "refund", in.ID)
		if err != nil {
			return nil, err
		}
		r, err := s.cfg.Payments.GetRefund(ctx, principal(ctx).TenantID, id)
		if err != nil {
			return nil, err
		}
		return &refundOutput{Body: r.ToView()}, nil
	}))

	huma.Register(api, operation(huma.Operation{
		OperationID: "list-refunds",
		Method:      http.MethodGet,
		Path:        "/v1/refunds",
		Summary:     "List refunds",
		Description: "Lists refunds newest first, optionally of one payment.",
		Tags:        tags,
	}, schemeSecretKey, http.StatusBadRequest), handle(func(ctx context.Context, in *listRefundsInput) (*refundListOutput, error) {
		page, err := in.page(ids.PrefixRefund)
		if err != nil {
			return nil, err
		}
		lp := payments.RefundListParams{Page: page}
		if in.Payment != "" {
			pid, ok := ids.Parse(ids.PrefixPayment, in.Payment)
			if !ok {
				return nil, errcode.Invalid(errcode.CodeParameterInvalid, "payment", "payment must be a payment ID")
			}
			lp.Payment = &pid
		}
		rs, more, err := s.cfg.Payments.ListRefunds(ctx, principal(ctx).TenantID, lp)
		if err != nil {
			return nil, err
		}
		out := &refundListOutput{Body: refundList{Object: "list", Data: []payments.RefundView{}, HasMore: more}}
		for _, r := range rs {
			out.Body.Data = append(out.Body.Data, r.ToView())
		}
		return out, nil
	}))
}

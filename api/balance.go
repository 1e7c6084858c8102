package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
	"github.com/google/uuid"

	"github.com/payments-api/payments/errcode"
	"github.com/payments-api/payments/ids"
	"github.com/payments-api/payments/ledger"
)

// BalanceAmount is one currency's balance.
type BalanceAmount struct {
	Currency string `json:"currency" example:"usd"`
	Amount   int64  `json:"amount" doc:"Minor units." example:"1912"`
}

// BalanceView is the tenant's balance.
type BalanceView struct {
	Object    string          `json:"object" enum:"balance"`
	Available []BalanceAmount `json:"available" doc:"Per currency: captured minus refunded minus fees."`
	Pending   []BalanceAmount `json:"pending" doc:"Per currency: funds not yet available. Money is available as soon as it is captured, so this is 0 until settlement delays exist."`
}

type balanceOutput struct {
	Body BalanceView
}

// BalanceTransactionView is one movement of the balance.
type BalanceTransactionView struct {
	ID       string `json:"id" doc:"Unique identifier, prefixed txn_." example:"txn_06h17frpsdzff29kp8gyg5mc4w"`
	Object   string `json:"object" enum:"balance_transaction"`
	Type     string `json:"type" enum:"charge,refund,adjustment" doc:"What moved the balance." example:"charge"`
	Amount   int64  `json:"amount" doc:"Gross amount, minor units; negative for money leaving the balance." example:"2000"`
	Fee      int64  `json:"fee" doc:"The processor's fee, minor units." example:"88"`
	Net      int64  `json:"net" doc:"amount - fee: the change of the balance." example:"1912"`
	Currency string `json:"currency" example:"usd"`
	Source   string `json:"source" doc:"The payment or refund that caused the movement." example:"pay_06h17frpsdzff29kp8gyg5mc4w"`
	Created  int64  `json:"created" doc:"Unix seconds." example:"1764090000"`
}

func balanceTxView(t ledger.Transaction) BalanceTransactionView {
	src := ids.Format(ids.PrefixPayment, t.SourceID)
	if t.SourceType == "refund" {
		src = ids.Format(ids.PrefixRefund, t.SourceID)
	}
	return BalanceTransactionView{
		ID: ids.Format(ids.PrefixBalanceTx, t.ID), Object: "balance_transaction", Type: string(t.Type),
		Amount: t.Amount, Fee: t.Fee, Net: t.Net, Currency: t.Currency, Source: src, Created: t.CreatedAt.Unix(),
	}
}

type listBalanceTxInput struct {
	ListQuery
	Type   string `query:"type" enum:"charge,refund,adjustment" doc:"Only movements of this type."`
	Source string `query:"source" maxLength:"64" doc:"Only movements of this payment (its charge and its refunds) or refund."`
}

type balanceTxList struct {
	Object  string                   `json:"object" enum:"list"`
	Data    []BalanceTransactionView `json:"data"`
	HasMore bool                     `json:"has_more"`
}

type balanceTxListOutput struct {
	Body balanceTxList
}

func registerBalance(api huma.API, s *Server) {
	tags := []string{"Balance"}
	huma.Register(api, operation(huma.Operation{
		OperationID: "get-balance",
		Method:      http.MethodGet,
		Path:        "/v1/balance",
		Summary:     "Retrieve your balance",
		Description: "Answers the available and pending balance per currency, computed from the double-entry ledger.",
		Tags:        tags,
	}, schemeSecretKey), handle(func(ctx context.Context, _ *struct{}) (*balanceOutput, error) {
		p := principal(ctx)
		bs, err := ledger.Balances(ctx, p.Shard.Pool, p.TenantID)
		if err != nil {
			return nil, err
		}
		out := &balanceOutput{Body: BalanceView{Object: "balance", Available: []BalanceAmount{}, Pending: []BalanceAmount{}}}
		for _, b := range bs {
			out.Body.Available = append(out.Body.Available, BalanceAmount{Currency: b.Currency, Amount: b.Available})
			out.Body.Pending = append(out.Body.Pending, BalanceAmount{Currency: b.Currency, Amount: b.Pending})
		}
		return out, nil
	}))

	huma.Register(api, operation(huma.Operation{
		OperationID: "list-balance-transactions",
		Method:      http.MethodGet,
		Path:        "/v1/balance_transactions",
		Summary:     "List balance transactions",
		Description: "Lists the movements of the balance newest first, each with amount, fee, net, type and source.",
		Tags:        tags,
	}, schemeSecretKey, http.StatusBadRequest), handle(func(ctx context.Context, in *listBalanceTxInput) (*balanceTxListOutput, error) {
		page, err := in.page(ids.PrefixBalanceTx)
		if err != nil {
			return nil, err
		}
		lp := ledger.ListParams{Limit: page.Limit, StartingAfter: page.StartingAfter, EndingBefore: page.EndingBefore, Type: ledger.Type(in.Type)}
		if in.Source != "" {
			var src uuid.UUID
			var ok bool
			if src, ok = ids.Parse(ids.PrefixPayment, in.Source); !ok {
				if src, ok = ids.Parse(ids.PrefixRefund, in.Source); !ok {
					return nil, errcode.Invalid(errcode.CodeParameterInvalid, "source", "source must be a payment or refund ID")
				}
			}
			lp.Source = &src
		}
		p := principal(ctx)
		ts, more, err := ledger.List(ctx, p.Shard.Pool, p.TenantID, lp)
		if err != nil {
			return nil, err
		}
		out := &balanceTxListOutput{Body: balanceTxList{Object: "list", Data: []BalanceTransactionView{}, HasMore: more}}
		for _, t := range ts {
			out.Body.Data = append(out.Body.Data, balanceTxView(t))
		}
		return out, nil
	}))
}

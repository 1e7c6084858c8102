package api

import (
	"context"
	"encoding/hex"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/google/uuid"

	"github.com/payments-api/payments/errcode"
	"github.com/payments-api/payments/ids"
	"github.com/payments-api/payments/ledger"
	"github.com/payments-api/payments/listing"
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

// atDigitsMax bounds the at parameter: Unix seconds fit in 11 digits until
// the year 5138.
const atDigitsMax = 11

type balanceInput struct {
	At string `query:"at" doc:"A past instant in Unix seconds: answers the balance as it was then, counting every movement booked at or before it. Without it, the balance now." example:"1764090000"`
}

// parseAt reads the at parameter: Unix seconds, positive, not in the future.
func parseAt(s string, now time.Time) (*time.Time, error) {
	if s == "" {
		return nil, nil
	}
	bad := func() error {
		return errcode.Invalid(errcode.CodeParameterInvalid, "at", "at must be a past instant in Unix seconds, such as 1764090000")
	}
	if len(s) > atDigitsMax {
		return nil, bad()
	}
	secs, err := strconv.ParseInt(s, 10, 64)
	if err != nil || secs <= 0 {
		return nil, bad()
	}
	at := time.Unix(secs, 0)
	if at.After(now) {
		return nil, errcode.Invalid(errcode.CodeParameterInvalid, "at", "at must not be in the future: the balance of an instant to come is not known yet")
	}
	return &at, nil
}

// SealTotal is one currency's and account's sum over a sealed period.
type SealTotal struct {
	Currency string `json:"currency" example:"usd"`
	Account  string `json:"account" enum:"merchant_balance,processor_clearing,processor_fees,payouts_in_transit,payouts_paid" example:"merchant_balance"`
	Amount   int64  `json:"amount" doc:"Minor units." example:"1912"`
}

// SealView is one sealed period of the ledger.
type SealView struct {
	ID           string      `json:"id" doc:"Unique identifier, prefixed seal_." example:"seal_06h17frpsdzff29kp8gyg5mc4w"`
	Object       string      `json:"object" enum:"ledger_seal"`
	PeriodStart  int64       `json:"period_start" doc:"Start of the period, Unix seconds, included." example:"1764086400"`
	PeriodEnd    int64       `json:"period_end" doc:"End of the period, Unix seconds, excluded." example:"1764090000"`
	EntryCount   int64       `json:"entry_count" doc:"How many ledger entries the period holds." example:"3"`
	Totals       []SealTotal `json:"totals" doc:"Sum of the period's entries per currency and account."`
	MerkleRoot   string      `json:"merkle_root" doc:"RFC 6962 Merkle tree hash of the period's entries, hex." example:"5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"`
	PreviousHash string      `json:"previous_hash" doc:"hash of the previous seal (64 zeros for the first): the chain." example:"0000000000000000000000000000000000000000000000000000000000000000"`
	Hash         string      `json:"hash" doc:"SHA-256 of hash_input, hex." example:"9a0b2c4d6e8f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293"`
	HashInput    string      `json:"hash_input" doc:"The canonical text the hash covers: every field of the seal." example:"ledger_seal|v1|ten_06h17frpsdzff29kp8gyg5mc4w|1764086400000000|1764090000000000|3|{\"usd\":{\"merchant_balance\":1912,\"processor_clearing\":-2000,\"processor_fees\":88}}|5dc9...|0000..."`
	Created      int64       `json:"created" doc:"When the seal was written, Unix seconds." example:"1764090060"`
}

func sealView(s ledger.Seal) (SealView, error) {
	text, err := ledger.SealText(s)
	if err != nil {
		return SealView{}, errcode.Internal(err)
	}
	v := SealView{
		ID: ids.Format(ids.PrefixSeal, s.ID), Object: "ledger_seal", PeriodStart: s.PeriodStart.Unix(), PeriodEnd: s.PeriodEnd.Unix(),
		EntryCount: s.EntryCount, Totals: []SealTotal{}, MerkleRoot: hex.EncodeToString(s.MerkleRoot),
		PreviousHash: hex.EncodeToString(s.PrevHash), Hash: hex.EncodeToString(s.Hash), HashInput: text, Created: s.CreatedAt.Unix(),
	}
	for _, c := range sortedKeys(s.Totals) {
		for _, a := range sortedKeys(s.Totals[c]) {
			v.Totals = append(v.Totals, SealTotal{Currency: c, Account: string(a), Amount: s.Totals[c][a]})
		}
	}
	return v, nil
}

func sortedKeys[K ~string, V any](m map[K]V) []K {
	out := make([]K, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

type sealList struct {
	Object  string     `json:"object" enum:"list"`
	Data    []SealView `json:"data"`
	HasMore bool       `json:"has_more" doc:"Whether more objects follow in the direction of travel."`
}

type sealListOutput struct {
	Body sealList
}

// ProofStepView is one sibling hash on the way from a leaf to the root.
type ProofStepView struct {
	Side string `json:"side" enum:"left,right" doc:"Where the sibling goes: left means hash(0x01 || sibling || current), right means hash(0x01 || current || sibling)." example:"right"`
	Hash string `json:"hash" doc:"The sibling's hash, hex." example:"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"`
}

// ProofLeafView is one ledger entry of the balance transaction with its
// audit path.
type ProofLeafView struct {
	Index int64           `json:"index" doc:"Position of the entry among the period's entries (booking time, transaction, account order)." example:"0"`
	Data  string          `json:"data" doc:"The entry's canonical text: tenant|balance transaction|account|currency|amount|booking time in Unix microseconds." example:"ten_06h17frpsdzff29kp8gyg5mc4w|txn_06h17frpsdzff29kp8gyg5mc4w|merchant_balance|usd|1912|1764086412345678"`
	Hash  string          `json:"hash" doc:"SHA-256(0x00 || data), hex." example:"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"`
	Path  []ProofStepView `json:"path" doc:"Sibling hashes from the leaf up to the root."`
}

// ProofView proves that a balance transaction's entries are in its
// period's seal.
type ProofView struct {
	Object             string                 `json:"object" enum:"balance_transaction_proof"`
	BalanceTransaction BalanceTransactionView `json:"balance_transaction"`
	Seal               SealView               `json:"seal"`
	TreeSize           int64                  `json:"tree_size" doc:"How many entries the sealed period holds." example:"3"`
	Leaves             []ProofLeafView        `json:"leaves" doc:"One per ledger entry of the balance transaction."`
}

type proofInput struct {
	ID string `path:"id" maxLength:"64" doc:"The balance transaction's ID." example:"txn_06h17frpsdzff29kp8gyg5mc4w"`
}

type proofOutput struct {
	Body ProofView
}

// BalanceTransactionView is one movement of the balance.
type BalanceTransactionView struct {
	ID       string `json:"id" doc:"Unique identifier, prefixed txn_." example:"txn_06h17frpsdzff29kp8gyg5mc4w"`
	Object   string `json:"object" enum:"balance_transaction"`
	Type     string `json:"type" enum:"charge,refund,adjustment,dispute,dispute_reversal,payout,payout_paid,payout_reversal" doc:"What moved the balance: dispute is a dispute's withdrawal with its fee, dispute_reversal the amount of a won dispute coming back. payout takes a payout's amount out of the balance, payout_reversal returns a failed or canceled payout's; payout_paid records that a payout arrived and leaves the balance unchanged (amount 0)." example:"charge"`
	Amount   int64  `json:"amount" doc:"Gross amount, minor units; negative for money leaving the balance." example:"2000"`
	Fee      int64  `json:"fee" doc:"The processor's fee, minor units." example:"88"`
	Net      int64  `json:"net" doc:"amount - fee: the change of the balance." example:"1912"`
	Currency string `json:"currency" example:"usd"`
	Source   string `json:"source" doc:"The payment, refund, dispute or payout that caused the movement." example:"pay_06h17frpsdzff29kp8gyg5mc4w"`
	Created  int64  `json:"created" doc:"Unix seconds." example:"1764090000"`
}

func balanceTxView(t ledger.Transaction) BalanceTransactionView {
	src := ids.Format(ids.PrefixPayment, t.SourceID)
	switch t.SourceType {
	case ledger.SourceTypeRefund:
		src = ids.Format(ids.PrefixRefund, t.SourceID)
	case ledger.SourceTypeDispute:
		src = ids.Format(ids.PrefixDispute, t.SourceID)
	}
	if t.SourceType == ledger.SourceTypePayout {
		src = ids.Format(ids.PrefixPayout, t.SourceID)
	}
	return BalanceTransactionView{
		ID: ids.Format(ids.PrefixBalanceTx, t.ID), Object: "balance_transaction", Type: string(t.Type),
		Amount: t.Amount, Fee: t.Fee, Net: t.Net, Currency: t.Currency, Source: src, Created: t.CreatedAt.Unix(),
	}
}

type listBalanceTxInput struct {
	ListQuery
	Type   string `query:"type" enum:"charge,refund,adjustment,dispute,dispute_reversal,payout,payout_paid,payout_reversal" doc:"Only movements of this type."`
	Source string `query:"source" maxLength:"64" doc:"Only movements of this payment (its charge, its refunds and its disputes), refund, dispute or payout."`
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
		Description: "Answers the available and pending balance per currency, computed from the double-entry ledger: " +
			"exact at the instant of the request, or, with `at`, at a past instant (every movement booked at or before it). " +
			"Either costs the same whatever the size of the history. A balance at an instant less than a minute old can still " +
			"gain movements whose transactions were in flight at that instant.",
		Tags: tags,
	}, schemeSecretKey, http.StatusBadRequest), handle(func(ctx context.Context, in *balanceInput) (*balanceOutput, error) {
		at, err := parseAt(in.At, time.Now())
		if err != nil {
			return nil, err
		}
		p := principal(ctx)
		var bs []ledger.Balance
		if at == nil {
			bs, err = ledger.Balances(ctx, p.Shard.Pool, p.TenantID)
		} else {
			bs, err = ledger.BalancesAt(ctx, p.Shard.Pool, p.TenantID, *at)
		}
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
					if src, ok = ids.Parse(ids.PrefixPayout, in.Source); !ok {
						if src, ok = ids.Parse(ids.PrefixDispute, in.Source); !ok {
							return nil, errcode.Invalid(errcode.CodeParameterInvalid, "source", "source must be a payment, refund, dispute or payout ID")
						}
					}
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

	huma.Register(api, operation(huma.Operation{
		OperationID: "list-ledger-seals",
		Method:      http.MethodGet,
		Path:        "/v1/ledger/seals",
		Summary:     "List ledger seals",
		Description: "Lists the seals of your ledger newest first. Each seal closes one period (an hour by default) once it ended: " +
			"the Merkle root of the period's entries, their count and totals, chained to the previous seal by its hash. " +
			"A period without entries has no seal. Check a balance transaction against its seal with its proof.",
		Tags: tags,
	}, schemeSecretKey, http.StatusBadRequest, http.StatusUnprocessableEntity), handle(func(ctx context.Context, in *ListQuery) (*sealListOutput, error) {
		page, err := in.page(ids.PrefixSeal)
		if err != nil {
			return nil, err
		}
		p := principal(ctx)
		seals, more, err := ledger.ListSeals(ctx, p.Shard.Pool, p.TenantID, listing.Page(page))
		if err != nil {
			return nil, err
		}
		out := &sealListOutput{Body: sealList{Object: "list", Data: []SealView{}, HasMore: more}}
		for _, s := range seals {
			v, err := sealView(s)
			if err != nil {
				return nil, err
			}
			out.Body.Data = append(out.Body.Data, v)
		}
		return out, nil
	}))

	huma.Register(api, operation(huma.Operation{
		OperationID: "get-balance-transaction-proof",
		Method:      http.MethodGet,
		Path:        "/v1/balance_transactions/{id}/proof",
		Summary:     "Prove a balance transaction",
		Description: "Answers an RFC 6962 inclusion proof that the balance transaction's ledger entries are in its period's seal: " +
			"hash each leaf's data as SHA-256(0x00 || data), fold in each path step (SHA-256(0x01 || left || right)) and compare " +
			"with the seal's merkle_root; then check the seal's hash against hash_input and the chain against the seals you kept. " +
			"Answers 409 balance_transaction_not_sealed while the period is still open. docs/API.md has example code.",
		Tags: tags,
	}, schemeSecretKey, http.StatusNotFound, http.StatusConflict), handle(func(ctx context.Context, in *proofInput) (*proofOutput, error) {
		id, err := objectID(ids.PrefixBalanceTx, "balance_transaction", in.ID)
		if err != nil {
			return nil, err
		}
		p := principal(ctx)
		pr, err := ledger.ProveTransaction(ctx, p.Shard.Pool, p.TenantID, id)
		if err != nil {
			return nil, err
		}
		seal, err := sealView(pr.Seal)
		if err != nil {
			return nil, err
		}
		out := &proofOutput{Body: ProofView{Object: "balance_transaction_proof", BalanceTransaction: balanceTxView(pr.Transaction),
			Seal: seal, TreeSize: pr.TreeSize, Leaves: []ProofLeafView{}}}
		for _, l := range pr.Leaves {
			lv := ProofLeafView{Index: int64(l.Index), Data: l.Data, Hash: hex.EncodeToString(l.Hash[:]), Path: []ProofStepView{}}
			for _, st := range l.Path {
				side := "right"
				if st.Left {
					side = "left"
				}
				lv.Path = append(lv.Path, ProofStepView{Side: side, Hash: hex.EncodeToString(st.Hash[:])})
			}
			out.Body.Leaves = append(out.Body.Leaves, lv)
		}
		return out, nil
	}))
}

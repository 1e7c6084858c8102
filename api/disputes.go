package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/payments-api/payments/errcode"
	"github.com/payments-api/payments/ids"
	"github.com/payments-api/payments/payments"
	"github.com/payments-api/payments/processor"
)

// DisputePath is the path of one dispute (exported so that Huma sees it
// embedded).
type DisputePath struct {
	ID string `path:"id" maxLength:"64" doc:"The dispute's ID." example:"dp_06h17frpsdzff29kp8gyg5mc4w"`
}

type disputeOutput struct {
	Body payments.DisputeView
}

// disputeEvidence is the text evidence Stripe takes, by Stripe's field
// names. The limits are payments.EvidenceShortLengthMax (500) and
// payments.EvidenceTextLengthMax (10,000) characters.
type disputeEvidence struct {
	AccessActivityLog            string `json:"access_activity_log,omitempty" maxLength:"10000" doc:"Server or activity logs showing that the customer used the product: IP addresses, times, activity."`
	BillingAddress               string `json:"billing_address,omitempty" maxLength:"500" doc:"The billing address the customer gave."`
	CancellationPolicyDisclosure string `json:"cancellation_policy_disclosure,omitempty" maxLength:"10000" doc:"How and when the customer was shown the cancellation policy."`
	CancellationRebuttal         string `json:"cancellation_rebuttal,omitempty" maxLength:"10000" doc:"Why the customer is not entitled to a refund for the cancellation."`
	CustomerEmailAddress         string `json:"customer_email_address,omitempty" maxLength:"500" doc:"The customer's email address." example:"jane@example.com"`
	CustomerName                 string `json:"customer_name,omitempty" maxLength:"500" doc:"The customer's name." example:"Jane Doe"`
	CustomerPurchaseIP           string `json:"customer_purchase_ip,omitempty" maxLength:"500" doc:"The IP address the customer bought from." example:"203.0.113.7"`
	DuplicateChargeExplanation   string `json:"duplicate_charge_explanation,omitempty" maxLength:"10000" doc:"Why two similar charges are not a duplicate."`
	DuplicateChargeID            string `json:"duplicate_charge_id,omitempty" maxLength:"500" doc:"The processor's ID of the charge that looks like a duplicate."`
	ProductDescription           string `json:"product_description,omitempty" maxLength:"10000" doc:"What was sold." example:"Blue T-shirt, size M, shipped 2026-11-20"`
	RefundPolicyDisclosure       string `json:"refund_policy_disclosure,omitempty" maxLength:"10000" doc:"How and when the customer was shown the refund policy."`
	RefundRefusalExplanation     string `json:"refund_refusal_explanation,omitempty" maxLength:"10000" doc:"Why the customer is not entitled to a refund."`
	ServiceDate                  string `json:"service_date,omitempty" maxLength:"500" doc:"When the service was given." example:"2026-11-20"`
	ShippingAddress              string `json:"shipping_address,omitempty" maxLength:"500" doc:"Where the product was shipped."`
	ShippingCarrier              string `json:"shipping_carrier,omitempty" maxLength:"500" doc:"Who shipped it." example:"UPS"`
	ShippingDate                 string `json:"shipping_date,omitempty" maxLength:"500" doc:"When it was shipped." example:"2026-11-20"`
	ShippingTrackingNumber       string `json:"shipping_tracking_number,omitempty" maxLength:"500" doc:"The carrier's tracking number." example:"1Z999AA10123456784"`
	UncategorizedText            string `json:"uncategorized_text,omitempty" maxLength:"10000" doc:"Anything else; in the sandbox, winning_evidence here wins the dispute and losing_evidence loses it." example:"winning_evidence"`
}

func (e disputeEvidence) fields() map[string]string {
	all := map[string]string{
		"access_activity_log": e.AccessActivityLog, "billing_address": e.BillingAddress,
		"cancellation_policy_disclosure": e.CancellationPolicyDisclosure, "cancellation_rebuttal": e.CancellationRebuttal,
		"customer_email_address": e.CustomerEmailAddress, "customer_name": e.CustomerName, "customer_purchase_ip": e.CustomerPurchaseIP,
		"duplicate_charge_explanation": e.DuplicateChargeExplanation, "duplicate_charge_id": e.DuplicateChargeID,
		"product_description": e.ProductDescription, "refund_policy_disclosure": e.RefundPolicyDisclosure,
		"refund_refusal_explanation": e.RefundRefusalExplanation, "service_date": e.ServiceDate, "shipping_address": e.ShippingAddress,
		"shipping_carrier": e.ShippingCarrier, "shipping_date": e.ShippingDate, "shipping_tracking_number": e.ShippingTrackingNumber,
		"uncategorized_text": e.UncategorizedText,
	}
	out := make(map[string]string, len(all))
	for k, v := range all {
		if v != "" {
			out[k] = v
		}
	}
	return out
}

type submitEvidenceInput struct {
	IdempotencyHeader
	DisputePath
	Body struct {
		Evidence disputeEvidence `json:"evidence" doc:"The text evidence, at least one field; at most 50,000 characters in all."`
	}
}

type closeDisputeInput struct {
	IdempotencyHeader
	DisputePath
}

type listDisputesInput struct {
	ListQuery
	Payment    string `query:"payment" maxLength:"64" doc:"Only disputes of this payment." example:"pay_06h17frpsdzff29kp8gyg5mc4w"`
	Status     string `query:"status" enum:"warning_needs_response,needs_response,under_review,won,lost" doc:"Only disputes in this status."`
	CreatedGTE int64  `query:"created[gte]" minimum:"0" doc:"Only disputes opened at or after this Unix time."`
	CreatedLTE int64  `query:"created[lte]" minimum:"0" doc:"Only disputes opened at or before this Unix time."`
}

type disputeList struct {
	Object  string                 `json:"object" enum:"list"`
	Data    []payments.DisputeView `json:"data"`
	HasMore bool                   `json:"has_more"`
}

type disputeListOutput struct {
	Body disputeList
}

func disputeView(v any) any { return v.(payments.Dispute).ToView() }

// registerDisputes serves disputes: reads, evidence, acceptance.
func registerDisputes(api huma.API, s *Server) {
	tags := []string{"Disputes"}
	huma.Register(api, operation(huma.Operation{
		OperationID: "get-dispute",
		Method:      http.MethodGet,
		Path:        "/v1/disputes/{id}",
		Summary:     "Retrieve a dispute",
		Description: "Answers a dispute (chargeback) of one of your payments: its amount, reason, status, evidence due date, the evidence submitted, " +
			"and whether its funds were withdrawn or reinstated. Disputes open from the processor (Stripe's charge.dispute.* webhooks; in the sandbox, " +
			"a payment with pm_card_createDispute). Another tenant's dispute answers 404.",
		Tags: tags,
	}, schemeSecretKey, http.StatusNotFound), handle(func(ctx context.Context, in *DisputePath) (*disputeOutput, error) {
		id, err := objectID(ids.PrefixDispute, "dispute", in.ID)
		if err != nil {
			return nil, err
		}
		d, err := s.cfg.Payments.GetDispute(ctx, principal(ctx).TenantID, id)
		if err != nil {
			return nil, err
		}
		return &disputeOutput{Body: d.ToView()}, nil
	}))

	huma.Register(api, operation(huma.Operation{
		OperationID: "list-disputes",
		Method:      http.MethodGet,
		Path:        "/v1/disputes",
		Summary:     "List disputes",
		Description: "Lists disputes newest first, with cursor pagination and filters by payment, status and opening time.",
		Tags:        tags,
	}, schemeSecretKey, http.StatusBadRequest), handle(func(ctx context.Context, in *listDisputesInput) (*disputeListOutput, error) {
		page, err := in.page(ids.PrefixDispute)
		if err != nil {
			return nil, err
		}
		lp := payments.DisputeListParams{Page: page, Status: processor.DisputeStatus(in.Status)}
		if in.Payment != "" {
			pid, ok := ids.Parse(ids.PrefixPayment, in.Payment)
			if !ok {
				return nil, errcode.Invalid(errcode.CodeParameterInvalid, "payment", "payment must be a payment ID (pay_...)")
			}
			lp.Payment = &pid
		}
		lp.CreatedGTE, lp.CreatedLTE = createdRange(in.CreatedGTE, in.CreatedLTE)
		ds, more, err := s.cfg.Payments.ListDisputes(ctx, principal(ctx).TenantID, lp)
		if err != nil {
			return nil, err
		}
		out := &disputeListOutput{Body: disputeList{Object: "list", Data: []payments.DisputeView{}, HasMore: more}}
		for _, d := range ds {
			out.Body.Data = append(out.Body.Data, d.ToView())
		}
		return out, nil
	}))

	huma.Register(api, operation(huma.Operation{
		OperationID: "submit-dispute-evidence",
		Method:      http.MethodPost,
		Path:        "/v1/disputes/{id}",
		Summary:     "Submit evidence for a dispute",
		Description: "Sends the text evidence to the processor and submits it (Stripe: update dispute with submit=true); the dispute goes under_review, " +
			"and the issuer decides. Evidence is submitted once: a second submission answers 409 dispute_evidence_submitted, a won or lost dispute " +
			"409 dispute_closed. A field that is unknown or too long answers 400 parameter_invalid with its param (evidence.<field>). In the sandbox, " +
			"text containing winning_evidence wins the dispute a few seconds later (the amount comes back, the fee does not), losing_evidence " +
			"loses it. 503 processor_unavailable: retry with the same Idempotency-Key.",
		Tags: tags,
	}, schemeSecretKey, http.StatusNotFound, http.StatusConflict, http.StatusServiceUnavailable), handle(func(ctx context.Context, in *submitEvidenceInput) (*disputeOutput, error) {
		storeAs(ctx, http.StatusOK, disputeView)
		id, err := objectID(ids.PrefixDispute, "dispute", in.ID)
		if err != nil {
			return nil, err
		}
		d, err := s.cfg.Payments.SubmitDisputeEvidence(ctx, principal(ctx).TenantID, id, in.Body.Evidence.fields())
		if err != nil {
			return nil, err
		}
		return &disputeOutput{Body: d.ToView()}, nil
	}))

	huma.Register(api, operation(huma.Operation{
		OperationID: "close-dispute",
		Method:      http.MethodPost,
		Path:        "/v1/disputes/{id}/close",
		Summary:     "Accept a dispute",
		Description: "Accepts the dispute instead of answering it (Stripe: close dispute): it is lost, and the withdrawn amount and fee stay withdrawn. " +
			"A dispute that is won or lost already answers 409 dispute_closed.",
		Tags: tags,
	}, schemeSecretKey, http.StatusNotFound, http.StatusConflict, http.StatusServiceUnavailable), handle(func(ctx context.Context, in *closeDisputeInput) (*disputeOutput, error) {
		storeAs(ctx, http.StatusOK, disputeView)
		id, err := objectID(ids.PrefixDispute, "dispute", in.ID)
		if err != nil {
			return nil, err
		}
		d, err := s.cfg.Payments.CloseDispute(ctx, principal(ctx).TenantID, id)
		if err != nil {
			return nil, err
		}
		return &disputeOutput{Body: d.ToView()}, nil
	}))
}

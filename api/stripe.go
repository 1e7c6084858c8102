package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/payments-api/payments/accounts"
	"github.com/payments-api/payments/errcode"
	"github.com/payments-api/payments/payments"
	"github.com/payments-api/payments/processor"
	"github.com/payments-api/payments/processor/stripe"
)

// Limits of the Stripe routes.
const (
	// StripeWebhookBodyBytesMax bounds a Stripe event. Events are a few
	// KiB; a charge.refunded event with many refunds embedded is the
	// largest we accept, so the bound is four times the API's.
	StripeWebhookBodyBytesMax = 256 << 10
	// ReconciliationLimitMax bounds the objects one HTTP reconciliation
	// compares (each costs a processor call within the request); the CLI,
	// `payments reconcile`, goes up to payments.ReportObjectsMax.
	ReconciliationLimitMax = 100
)

// Codes of the Stripe routes.
const (
	// CodeStripeSignatureInvalid answers a webhook whose Stripe-Signature
	// is missing, malformed, older than 300 seconds or wrong.
	CodeStripeSignatureInvalid = "stripe_signature_invalid"
)

// schemeStripeSignature documents that Stripe's webhooks authenticate with
// the Stripe-Signature header (an HMAC of the raw body); the handlers
// verify it.
const schemeStripeSignature = "stripeSignature"

const stripeEventExample = `{"id":"evt_3PgafyB7WZ01zgkW1fBqMg5x","object":"event","api_version":"2023-10-16","created":1764090000,` +
	`"type":"payment_intent.succeeded","data":{"object":{"id":"pi_3PgafyB7WZ01zgkW0xQm9a1b","object":"payment_intent",` +
	`"amount":2000,"amount_received":2000,"currency":"usd","status":"succeeded",` +
	`"metadata":{"tenant_id":"ten_06f0kb9t5q3e3bq4b7bw0vq2rc","payment_id":"pay_06h17frpsdzff29kp8gyg5mc4w"}}}}`

type stripeWebhookInput struct {
	Signature string `header:"Stripe-Signature" maxLength:"4096" doc:"Stripe's signature of the raw body: t=<unix time>,v1=<hex HMAC-SHA256>[,v1=...]." example:"t=1764090000,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd"`
	RawBody   []byte `contentType:"application/json"`
}

type stripeTenantWebhookInput struct {
	Tenant    string `path:"tenant" maxLength:"64" doc:"The tenant whose own Stripe account sends the events." example:"ten_06f0kb9t5q3e3bq4b7bw0vq2rc"`
	Signature string `header:"Stripe-Signature" maxLength:"4096" doc:"Stripe's signature of the raw body." example:"t=1764090000,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd"`
	RawBody   []byte `contentType:"application/json"`
}

type stripeWebhookOutput struct {
	Body struct {
		Received bool `json:"received" doc:"Always true: the event was verified and took effect, or needs nothing." example:"true"`
	}
}

type stripeAccountInput struct {
	IdempotencyHeader
	Tenant string `path:"tenant" maxLength:"64" doc:"The tenant's ID." example:"ten_06f0kb9t5q3e3bq4b7bw0vq2rc"`
	Body   struct {
		// No length constraints in the schema: Huma's validation errors
		// echo the value, and these are secrets. accounts.SetStripe checks
		// them with messages that do not.
		SecretKey      string   `json:"secret_key" doc:"The tenant's Stripe secret (sk_...) or restricted (rk_...) key, at most 255 characters. Stored encrypted; never answered or logged." example:"sk_test_51Hx0000000000000000000000000000000000000000000000000000"`
		WebhookSecrets []string `json:"webhook_secrets" doc:"1 to 3 signing secrets (whsec_...) of the tenant's Stripe webhook endpoint (pointed at /v1/stripe/webhooks/{tenant}), the current one first; give the old one too while rotating. Stored encrypted." example:"[\"whsec_0000000000000000000000000000\"]"`
	}
}

type stripeAccountOutput struct {
	Body accounts.StripeSummary
}

type reconciliationQuery struct {
	Tenant string `path:"tenant" maxLength:"64" doc:"The tenant's ID." example:"ten_06f0kb9t5q3e3bq4b7bw0vq2rc"`
	Since  string `query:"since" required:"true" maxLength:"40" doc:"Compare objects created at or after this date (YYYY-MM-DD, UTC) or time (RFC 3339)." example:"2026-11-01"`
	Limit  int    `query:"limit" minimum:"1" maximum:"100" default:"100" doc:"How many payments, and how many refunds, to compare at most."`
}

type reconciliationRepairInput struct {
	IdempotencyHeader
	Tenant string `path:"tenant" maxLength:"64" doc:"The tenant's ID." example:"ten_06f0kb9t5q3e3bq4b7bw0vq2rc"`
	Body   struct {
		Since  string `json:"since" maxLength:"40" doc:"Compare objects created at or after this date (YYYY-MM-DD, UTC) or time (RFC 3339)." example:"2026-11-01"`
		Limit  int    `json:"limit,omitempty" minimum:"1" maximum:"100" doc:"How many payments, and how many refunds, to compare at most; 100 when absent." example:"100"`
		Repair bool   `json:"repair" doc:"Apply the processor's state where ours may still move to it (forward status changes, interrupted operations, finished refunds). Amount differences are never repaired." example:"true"`
	}
}

type reconciliationOutput struct {
	Body payments.Report
}

// registerStripe serves Stripe's webhooks and the admin routes of tenants'
// own Stripe accounts and of reconciliation.
func registerStripe(api huma.API, s *Server) {
	tags := []string{"Stripe"}
	errs := []int{http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusServiceUnavailable}
	webhookOp := func(op huma.Operation, more ...int) huma.Operation {
		op = operation(op, "", append(more, errs...)...)
		op.Security = []map[string][]string{{schemeStripeSignature: {}}}
		op.MaxBodyBytes = StripeWebhookBodyBytesMax + 1
		// The body is Stripe's, verified by its signature; Huma must not
		// judge it against a schema first.
		op.SkipValidateBody = true
		return op
	}
	// Huma describes a raw body as bytes; say what the bytes are.
	describeEvent := func(path string) {
		op := api.OpenAPI().Paths[path].Post
		op.RequestBody.Description = "The Stripe event exactly as Stripe sent it (the signature covers these bytes), at most 256 KiB."
		op.RequestBody.Required = true
		op.RequestBody.Content["application/json"].Schema = &huma.Schema{Type: huma.TypeObject, Description: "A Stripe event object."}
		op.RequestBody.Content["application/json"].Example = json.RawMessage(stripeEventExample)
	}
	huma.Register(api, webhookOp(huma.Operation{
		OperationID: "stripe-webhook",
		Method:      http.MethodPost,
		Path:        "/v1/stripe/webhooks",
		Summary:     "Receive a Stripe event (platform account)",
		Description: "Point the platform Stripe account's webhook endpoint here. The Stripe-Signature header is verified over the raw body with " +
			"STRIPE_WEBHOOK_SECRET (300 s tolerance; during a rotation any v1 signature made with any configured secret is accepted); a missing, " +
			"forged or stale signature answers 400 stripe_signature_invalid and changes nothing. payment_intent.succeeded, .payment_failed, " +
			".canceled, .processing, .requires_action and .amount_capturable_updated move the payment named by the PaymentIntent's metadata, " +
			"charge.refunded, charge.refund.updated and refund.updated move our refunds, charge.dispute.created, .updated, .closed, .funds_withdrawn " +
			"and .funds_reinstated open and move disputes (the disputed PaymentIntent names the payment), and a connected account's payout.paid, " +
			".failed, .canceled and .updated (from the platform's Connect endpoint) move our payouts, through the same state machines, ledger and events as " +
			"API calls. Each event ID takes effect once however often it arrives, and an older event never moves a payment backwards. Other " +
			"event types, and objects that are not ours, answer 200 and change nothing. 503 asks Stripe to deliver the event again later " +
			"(an operation on the payment was in flight).",
		Tags: tags,
	}), handle(func(ctx context.Context, in *stripeWebhookInput) (*stripeWebhookOutput, error) {
		return s.stripeWebhook(ctx, s.cfg.StripeWebhookSecrets, "", in.Signature, in.RawBody)
	}))
	describeEvent("/v1/stripe/webhooks")
	huma.Register(api, webhookOp(huma.Operation{
		OperationID: "stripe-tenant-webhook",
		Method:      http.MethodPost,
		Path:        "/v1/stripe/webhooks/{tenant}",
		Summary:     "Receive a Stripe event (a tenant's own account)",
		Description: "Point the webhook endpoint of a tenant's own Stripe account here. The same as /v1/stripe/webhooks, verified with the " +
			"tenant's webhook signing secrets (set through the admin API), and only events about the tenant's own objects take effect. 404 when " +
			"the tenant does not exist or has no Stripe account of its own.",
		Tags: tags,
	}, http.StatusNotFound), handle(func(ctx context.Context, in *stripeTenantWebhookInput) (*stripeWebhookOutput, error) {
		id, err := parseTenant(in.Tenant)
		if err != nil {
			return nil, err
		}
		if s.cfg.StripeAccounts == nil {
			return nil, errcode.NotFound("stripe account of tenant", in.Tenant)
		}
		acct, ok, err := s.cfg.StripeAccounts.Stripe(ctx, id)
		if errcode.Is(err, errcode.CodeResourceMissing) || (err == nil && !ok) {
			return nil, errcode.NotFound("stripe account of tenant", in.Tenant)
		}
		if err != nil {
			return nil, err
		}
		return s.stripeWebhook(ctx, acct.WebhookSecrets, in.Tenant, in.Signature, in.RawBody)
	}))
	describeEvent("/v1/stripe/webhooks/{tenant}")

	admin := []string{"Admin"}
	huma.Register(api, operation(huma.Operation{
		OperationID: "admin-set-stripe-account",
		Method:      http.MethodPost,
		Path:        "/v1/admin/tenants/{tenant}/stripe_account",
		Summary:     "Set a tenant's own Stripe account",
		Description: "Stores the tenant's Stripe secret key and webhook signing secrets, encrypted at rest with AES-256-GCM under " +
			"PAYMENTS_ENCRYPTION_KEY; from then on (within 10 seconds on every replica) the tenant's new payments go to its own account. The " +
			"secrets are never answered or logged: the answer shows only that a key is set, its last four characters and its mode. Setting it " +
			"again replaces it. 409 encryption_not_configured when the server has no PAYMENTS_ENCRYPTION_KEY.",
		Tags: admin,
	}, schemeAdminToken, http.StatusNotFound, http.StatusConflict), handle(adminWrite(s, http.StatusOK, func(ctx context.Context, in *stripeAccountInput) (*stripeAccountOutput, error) {
		id, err := parseTenant(in.Tenant)
		if err != nil {
			return nil, err
		}
		if s.cfg.StripeAccounts == nil {
			return nil, errcode.New(errcode.KindConflict, accounts.CodeEncryptionNotConfigured, "tenant Stripe accounts are not enabled on this server")
		}
		sum, err := s.cfg.StripeAccounts.SetStripe(ctx, id, in.Body.SecretKey, in.Body.WebhookSecrets)
		if err != nil {
			return nil, err
		}
		return &stripeAccountOutput{Body: sum}, nil
	})))
	huma.Register(api, operation(huma.Operation{
		OperationID: "admin-get-stripe-account",
		Method:      http.MethodGet,
		Path:        "/v1/admin/tenants/{tenant}/stripe_account",
		Summary:     "Retrieve a tenant's own Stripe account",
		Description: "Answers whether the tenant has its own Stripe account, with its key's last four characters and mode; never a secret. 404 when it has none.",
		Tags:        admin,
	}, schemeAdminToken, http.StatusNotFound), handle(func(ctx context.Context, in *tenantPath) (*stripeAccountOutput, error) {
		id, err := parseTenant(in.Tenant)
		if err != nil {
			return nil, err
		}
		if s.cfg.StripeAccounts == nil {
			return nil, errcode.NotFound("stripe account of tenant", in.Tenant)
		}
		sum, err := s.cfg.StripeAccounts.GetStripe(ctx, id)
		if err != nil {
			return nil, err
		}
		return &stripeAccountOutput{Body: sum}, nil
	}))
	huma.Register(api, operation(huma.Operation{
		OperationID:   "admin-delete-stripe-account",
		Method:        http.MethodDelete,
		Path:          "/v1/admin/tenants/{tenant}/stripe_account",
		Summary:       "Remove a tenant's own Stripe account",
		Description:   "Deletes the tenant's stored Stripe keys; its new payments go to the platform's processor again. Payments already made on the tenant's account stay there: capture and refund them before removing it.",
		Tags:          admin,
		DefaultStatus: http.StatusNoContent,
	}, schemeAdminToken, http.StatusNotFound), handle(func(ctx context.Context, in *tenantPath) (*struct{}, error) {
		id, err := parseTenant(in.Tenant)
		if err != nil {
			return nil, err
		}
		if s.cfg.StripeAccounts == nil {
			return nil, errcode.NotFound("stripe account of tenant", in.Tenant)
		}
		return &struct{}{}, s.cfg.StripeAccounts.DeleteStripe(ctx, id)
	}))

	reportDoc := "Compares the tenant's payments and refunds created since the given date with the processor's objects (a PaymentIntent or " +
		"refund retrieved for each, by its processor reference) and lists every difference in status or amount, oldest object first, with " +
		"whether it could be repaired. Disputes opened since then are compared too (status, amount, and funds the processor withdrew or " +
		"reinstated that the ledger has not booked); a repair applies them as their webhooks would. "
	huma.Register(api, operation(huma.Operation{
		OperationID: "admin-reconciliation-report",
		Method:      http.MethodGet,
		Path:        "/v1/admin/tenants/{tenant}/reconciliation",
		Summary:     "Reconcile a tenant with its processor",
		Description: reportDoc + "Changes nothing. At most 100 payments and 100 refunds per request (truncated says when more matched); " +
			"`payments reconcile` compares up to 10,000. 503 processor_unavailable when the processor cannot be asked.",
		Tags: admin,
	}, schemeAdminToken, http.StatusBadRequest, http.StatusNotFound, http.StatusServiceUnavailable),
		handle(func(ctx context.Context, in *reconciliationQuery) (*reconciliationOutput, error) {
			return s.reconcile(ctx, in.Tenant, in.Since, in.Limit, false)
		}))
	huma.Register(api, operation(huma.Operation{
		OperationID: "admin-reconciliation-repair",
		Method:      http.MethodPost,
		Path:        "/v1/admin/tenants/{tenant}/reconciliation",
		Summary:     "Reconcile a tenant with its processor, repairing",
		Description: reportDoc + "With repair true it applies the processor's state where ours may still move to it: a pending payment the " +
			"processor settled, an operation a crash interrupted, a pending refund the processor finished; through the same state machine, " +
			"ledger and events as webhooks. It never moves a payment backwards and never changes an amount; those differences stay listed.",
		Tags: admin,
	}, schemeAdminToken, http.StatusNotFound, http.StatusServiceUnavailable),
		handle(adminWrite(s, http.StatusOK, func(ctx context.Context, in *reconciliationRepairInput) (*reconciliationOutput, error) {
			return s.reconcile(ctx, in.Tenant, in.Body.Since, in.Body.Limit, in.Body.Repair)
		})))
}

func (s *Server) reconcile(ctx context.Context, tenant, since string, limit int, repair bool) (*reconciliationOutput, error) {
	id, err := parseTenant(tenant)
	if err != nil {
		return nil, err
	}
	t, err := payments.ParseSince(since)
	if err != nil {
		return nil, err
	}
	if limit <= 0 || limit > ReconciliationLimitMax {
		limit = ReconciliationLimitMax
	}
	// The report asks the processor once per object; it keeps going when
	// the admin's client gives up, so a repair is never half applied.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
	defer cancel()
	rep, err := s.cfg.Payments.ReconciliationReport(ctx, id, payments.ReportParams{Since: t, Limit: limit, Repair: repair})
	if err != nil {
		return nil, err
	}
	return &reconciliationOutput{Body: rep}, nil
}

// stripeWebhook verifies and applies one Stripe event. tenant, when set,
// is the tenant whose own account signed it: events about other tenants'
// objects are ignored.
func (s *Server) stripeWebhook(ctx context.Context, secrets []string, tenant, signature string, body []byte) (*stripeWebhookOutput, error) {
	n, err := stripe.ParseWebhook(body, signature, secrets)
	if errors.Is(err, stripe.ErrSignature) {
		return nil, errcode.New(errcode.KindInvalid, CodeStripeSignatureInvalid, "%s", err.Error())
	}
	if err != nil {
		return nil, errcode.New(errcode.KindInvalid, errcode.CodeInvalidRequest, "%s", err.Error())
	}
	out := &stripeWebhookOutput{}
	out.Body.Received = true
	if tenant != "" && n.TenantID != "" && n.TenantID != tenant {
		return out, nil
	}
	// The event's effect is recorded even if Stripe hangs up meanwhile.
	ctx = context.WithoutCancel(ctx)
	if n.Update != nil {
		if err := ignoreForeign(s.cfg.Payments.ApplyUpdate(ctx, *n.Update)); err != nil {
			return nil, err
		}
	}
	for _, u := range n.RefundUpdates {
		if err := ignoreForeign(s.cfg.Payments.ApplyRefundUpdate(ctx, u)); err != nil {
			return nil, err
		}
	}
	if n.DisputeUpdate != nil {
		if err := s.applyStripeDispute(ctx, tenant, *n.DisputeUpdate); err != nil {
			return nil, err
		}
	}
	if n.PayoutUpdate != nil {
		if err := ignoreForeign(s.cfg.Payments.ApplyPayoutUpdate(ctx, *n.PayoutUpdate)); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ignoreForeign drops the errors of an event about objects that are not
// ours (unknown tenant, payment or refund, malformed IDs): answering
// anything but 2xx would make Stripe send them again for three days.
func ignoreForeign(err error) error {
	e := errcode.As(err)
	if e != nil && (e.Kind == errcode.KindNotFound || e.Kind == errcode.KindInvalid) {
		return nil
	}
	return err
}

// applyStripeDispute applies a charge.dispute.* event. tenant, when set,
// is the tenant whose own account sent it: its charge is located on that
// account, and only its own payments are moved.
func (s *Server) applyStripeDispute(ctx context.Context, tenant string, u processor.DisputeUpdate) error {
	if tenant != "" {
		if u.TenantID != "" && u.TenantID != tenant {
			return nil
		}
		if u.TenantID == "" {
			// The tenant's account is asked which payment the charge is;
			// the payment ID comes from there.
			u.TenantID, u.PaymentID = tenant, ""
		}
	}
	return ignoreForeign(s.cfg.Payments.ApplyDisputeUpdate(ctx, u))
}

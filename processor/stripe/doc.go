// Package stripe is the Stripe adapter of processor.Processor, built on
// stripe-go v76. A payment is one PaymentIntent, created and confirmed in
// one call with `payment_method_types=[card]`; capture, cancel and retrieve
// act on it, and refunds are Stripe refunds of it. Every PaymentIntent and
// refund carries our tenant and payment (and refund) IDs in its metadata, so
// an inbound webhook names the object it is about.
//
// # Accounts and clients
//
// An Adapter serves one Stripe account: the platform's (STRIPE_SECRET_KEY)
// or a tenant's own. It holds its own stripe-go backend (base URL, HTTP
// client with a per-attempt timeout, network retries) and never touches
// stripe-go's global key or backends, so accounts cannot leak into each
// other.
//
// # Crash safety and retries
//
// Callers pass an idempotency key derived from our object's ID and the
// operation; the adapter sends it as Stripe's Idempotency-Key, so a retry by
// stripe-go (network errors, 409, some 429 and 503 answers), by our caller
// or by a restarted process is the same request to Stripe, and Stripe
// answers it from its idempotency cache instead of charging twice. A call
// without a key is refused before anything is sent.
//
// # Errors
//
// Card declines come back as a Charge in processor.StatusFailed with
// Stripe's decline_code, never as a Go error. Requests Stripe refuses
// (invalid parameters, unknown objects, a state that forbids the
// operation) become *errcode.Error values. Everything whose outcome is
// unknown (network errors, timeouts, 5xx, rate limits, authentication
// failures of the account's key, idempotency conflicts) wraps
// processor.ErrUnavailable, and the caller retries with the same key or
// reconciles. Error messages never carry Stripe's raw error body, which
// can hold a PaymentIntent's client secret.
//
// # Circuit breaking
//
// A gobreaker circuit breaker per account counts calls whose outcome was
// unavailable for reasons on Stripe's side (5xx, network, timeouts, a
// refused key). After BreakerFailures consecutive ones it opens for
// BreakerOpen: calls fail at once with an error wrapping
// processor.ErrUnavailable that carries the remaining time
// (processor.RetryAfter), and Ready reports the same, so the payments core
// refuses new payments before recording anything. Rate limits (429) and
// idempotency conflicts do not count: Stripe answered. After the open
// period one probe call goes through (half-open); its success closes the
// breaker.
//
// # Webhooks
//
// ParseWebhook verifies Stripe-Signature over the raw body with stripe-go's
// webhook package (tolerance WebhookTolerance; every v1 signature of the
// header is tried against every configured secret, so secret rotation
// works), and turns the events the payments core uses into processor
// Updates and RefundUpdates.
package stripe

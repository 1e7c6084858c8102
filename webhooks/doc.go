// Package webhooks tells merchants about every change without polling:
// their endpoints (URLs with a signing secret), the fan-out of outbox events
// to deliveries, the claiming and sending of deliveries by any number of
// workers, signing, the SSRF guard, the retry schedule and the metrics.
//
// # Fan-out
//
// Payment transactions only append events, each with a narrow row in
// event_outbox (package events); they never read endpoints. A worker's
// fan-out takes a bounded batch of the oldest outbox rows, inserts one
// delivery per enabled endpoint of the tenant that subscribes to the
// event's type and existed when the event happened, and deletes the outbox
// rows, in one READ COMMITTED transaction. UNIQUE (tenant_id, event_id, endpoint_id) with
// ON CONFLICT DO NOTHING keeps concurrent fan-outs from duplicating, and
// the weaker level keeps the scan of undispatched events from taking the
// predicate locks that made it a pivot of payment transactions.
//
// # Claiming with fencing tokens
//
// Workers share the deliveries table as a queue. A claim is one short READ
// COMMITTED transaction (its UPDATE re-checks that the row is still due) that sets lease_owner and lease_expires_at on a
// batch of due rows and increments their lease_version. The request is sent
// outside any transaction (DESIGN.md rule 3). The outcome is recorded by an
// UPDATE that names the lease_version the worker claimed: a worker that was
// paused past its lease, or cut off from the database, finds that another
// worker's claim changed the version, updates 0 rows and discards its
// outcome (ErrLeaseLost, counted in payments_webhook_stale_lease_discards_total).
// Nothing here needs advisory locks, LISTEN/NOTIFY or SKIP LOCKED, so it
// runs the same on PostgreSQL and CockroachDB. Delivery is at least once: a
// worker that dies after sending and before recording leaves a lease that
// expires, and the delivery is sent again. Receivers deduplicate by the
// Payments-Event-Id header and order by the event's sequence.
//
// # Signing
//
// Each request carries Payments-Signature: t=<unix seconds>,v1=<hex
// HMAC-SHA256 of "<t>.<raw body>" keyed with the whole secret string>, with
// a second v1 for 24 hours after a rotation. The body is the event exactly
// as GET /v1/events/{id} answers it (events.Render).
//
// # SSRF guard
//
// Endpoint URLs must be https (http only when private networks are
// allowed), without user information, with a host that is a DNS name or an
// IP address in canonical form. Addresses are checked at registration
// (after resolving the name) and again when dialing, in the dialer's
// control hook, on the resolved address actually connected to. No proxy is
// used and redirects are not followed.
//
// # Known limitations
//
//   - Signing secrets are sealed at rest (AES-256-GCM, bound to the tenant
//     and the role) when PAYMENTS_ENCRYPTION_KEY is set, and stored in the
//     clear with a warning at start otherwise. The stored idempotent
//     answer of a creation or a rotation, which shows the secret, is
//     sealed the same way (idempotency.Request.SealAnswer).
//   - Each outcome is recorded in its own transaction; grouping the
//     records of a batch into one transaction would raise throughput.
//   - Finished deliveries and their attempts are purged after their
//     retention (PurgeDeliveries, run by package retention).
//   - Leases compare the clocks of different workers; a worker whose clock
//     runs ahead takes leases over early. Fencing keeps outcomes correct, at
//     the price of duplicate sends.
package webhooks

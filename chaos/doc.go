// Package chaos is the fault-injection suite: it runs the real `payments
// serve` (two processes) and `payments worker` binaries built from this
// tree against a PostgreSQL, a Redis, a TCP proxy to PostgreSQL and the
// scripted Stripe double of its own, drives merchants' clients that retry
// every write with its Idempotency-Key, injects faults by a seeded
// schedule and at random, and records a history in which each operation is
// ok, failed or unknown (Jepsen's vocabulary). A checker then decides, from
// the history, the database, the Stripe double and a loopback webhook
// receiver, whether any promise was broken:
//
//   - every acknowledged payment (and capture, cancel, refund) is stored,
//     exactly once, and each unknown one resolves to at most one after its
//     client's retries;
//   - the ledger sums to zero per transaction and per tenant and currency,
//     the merchant balance equals its postings, the net of its balance
//     transactions and GET /v1/balance, and each payment's postings equal
//     its captured amount less fee and refunds;
//   - refunds never exceed captures;
//   - every event reaches the receiver at least once (duplicates counted);
//   - no 5xx is answered outside a fault window (plus a grace).
//
// Faults: SIGKILL of an API process and of the worker, SIGKILL and
// restart of PostgreSQL, Redis killed and restarted, the Stripe double
// answering 500s, timing out, resetting connections and answering slowly,
// the proxy dropping or stalling every PostgreSQL connection of the API,
// and one API process restarted with its clock moved
// (PAYMENTS_TEST_CLOCK_OFFSET_MS, a test-only hook).
//
// `make chaos` runs it for 10 minutes with a printed, replayable seed, and
// the Patroni failover scenario (patroni_test.go); `make test` runs a
// short profile. See README.md ("Fault injection") and docs/RELIABILITY.md.
package chaos

// Package payments is the Go client of the Payments API.
//
// api.gen.go is generated from the committed OpenAPI document
// (api/openapi-3.0.json) by oapi-codegen v2.8.2; regenerate it with
// scripts/sdk-generate.sh, never by hand. The rest is a thin hand-written
// layer: the API key, an automatic Idempotency-Key on every POST kept
// across that call's retries, retries with exponential backoff and jitter
// (network errors, 409 in flight, 429, 5xx; Retry-After honoured), typed
// errors by class and code, pagination iterators and the webhook signature
// verifier. See README.md.
package payments

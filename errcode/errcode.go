// Package errcode defines the one domain error type of the service. Every
// error a client can see carries a stable machine code; the HTTP edge maps
// the code's Kind to a status in one table and never inspects messages.
package errcode

import (
	"errors"
	"fmt"
)

// Kind groups codes by how a client should react; the HTTP edge maps each
// Kind to one status code.
type Kind int

// Kinds, each mapped to exactly one HTTP status by the edge.
const (
	KindInternal        Kind = iota // 500: our fault, retry later
	KindInvalid                     // 400: the request is wrong
	KindUnauthenticated             // 401
	KindPaymentRequired             // 402: a card was declined
	KindForbidden                   // 403
	KindNotFound                    // 404
	KindConflict                    // 409: the state forbids it right now
	KindUnprocessable               // 400 since the one rule for invalid requests: well-formed but not acceptable
	KindRateLimited                 // 429
	KindUnavailable                 // 503: a dependency is down, retry later
	KindTooLarge                    // 413
)

// Stable codes shared by several packages. Packages may define more codes;
// a code, once published, never changes meaning.
const (
	CodeInternal              = "internal_error"
	CodeInvalidRequest        = "invalid_request"
	CodeParameterInvalid      = "parameter_invalid"
	CodeParameterMissing      = "parameter_missing"
	CodeResourceMissing       = "resource_missing"
	CodeUnauthenticated       = "unauthenticated"
	CodeTenantDisabled        = "tenant_disabled"
	CodeReadOnlyKey           = "api_key_read_only"
	CodeRateLimited           = "rate_limited"
	CodeRequestTooLarge       = "request_too_large"
	CodeUnavailable           = "service_unavailable"
	CodeRegionUnavailable     = "region_unavailable"
	CodeAmbiguousCommit       = "outcome_unknown"
	CodeIdempotencyReused     = "idempotency_key_reused"
	CodeIdempotencyInFlight   = "idempotency_key_in_use"
	CodeIdempotencyKeyInvalid = "idempotency_key_invalid"
)

// Error is the domain error. Message is safe to show to the client: it must
// never contain a secret or card data.
type Error struct {
	Kind    Kind
	Code    string
	Message string
	// Param names the request field at fault, when there is one.
	Param string
	// DeclineCode is the processor's reason for a card decline.
	DeclineCode string
	// Payment is the ID of the payment the error is about, when one exists.
	Payment string
	// Err is the underlying cause; it is logged, never shown.
	Err error
}

// Error implements error.
func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return e.Code + ": " + e.Message
}

// Unwrap exposes the cause to errors.Is and errors.As.
func (e *Error) Unwrap() error { return e.Err }

// New returns an Error of the given kind and code.
func New(kind Kind, code, format string, args ...any) *Error {
	return &Error{Kind: kind, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid returns a 400-kind error about one parameter.
func Invalid(code, param, format string, args ...any) *Error {
	e := New(KindInvalid, code, format, args...)
	e.Param = param
	return e
}

// NotFound returns the error for an object that does not exist or belongs to
// another tenant; both look the same to the caller.
func NotFound(what, id string) *Error {
	e := New(KindNotFound, CodeResourceMissing, "no such %s: '%s'", what, id)
	e.Param = "id"
	return e
}

// Internal wraps an unexpected failure; the cause is kept for logs only.
func Internal(err error) *Error {
	return &Error{Kind: KindInternal, Code: CodeInternal, Message: "an internal error occurred", Err: err}
}

// As returns the *Error in err's chain, or nil.
func As(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}

// Is reports whether err carries the given code.
func Is(err error, code string) bool {
	e := As(err)
	return e != nil && e.Code == code
}

package payments

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// Error classes: the `type` member of an error answer. An SDK user maps
// errors by class first and by Code second.
const (
	TypeInvalidRequest = "invalid_request_error"
	TypeCard           = "card_error"
	TypeIdempotency    = "idempotency_error"
	TypeRateLimit      = "rate_limit_error"
	TypeAuthentication = "authentication_error"
	TypePermission     = "permission_error"
	TypeAPI            = "api_error"
)

// Codes the client itself looks at (the API documents all of them).
const (
	CodeCardDeclined        = "card_declined"
	CodeIdempotencyKeyInUse = "idempotency_key_in_use"
	CodeIdempotencyReused   = "idempotency_key_reused"
	CodeResourceMissing     = "resource_missing"
	CodeParameterInvalid    = "parameter_invalid"
	CodeRateLimited         = "rate_limited"
)

// ResponseError is an error answer of the API (application/problem+json).
// Every typed error embeds it: errors.As(err, &re) with re a
// *ResponseError reads any of them.
type ResponseError struct {
	// Status is the HTTP status.
	Status int
	// Type is the error class, one of the Type* constants.
	Type string
	// Code is the stable machine code, such as card_declined.
	Code string
	// Param names the request parameter at fault, when one is.
	Param string
	// DeclineCode is the issuer's reason of a card decline.
	DeclineCode string
	// Payment is the ID of the payment that a card error concerns.
	Payment string
	// Message is the human explanation (the problem's detail).
	Message string
	// RequestID identifies the request in the server's logs.
	RequestID string
}

// Error implements error.
func (e *ResponseError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "payments: %d %s", e.Status, e.Type)
	if e.Code != "" {
		b.WriteString(" (" + e.Code + ")")
	}
	if e.Param != "" {
		b.WriteString(" param " + e.Param)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.RequestID != "" {
		b.WriteString(" [" + e.RequestID + "]")
	}
	return b.String()
}

// The typed errors, one per class; each unwraps to its *ResponseError, so
// errors.As(err, &cardErr) and errors.As(err, &responseErr) both work.
type (
	// InvalidRequestError: the request was wrong (400, 404, 405, 413, 415, 422).
	InvalidRequestError struct{ *ResponseError }
	// CardError: the card was declined (402); the payment is kept as failed.
	CardError struct{ *ResponseError }
	// IdempotencyError: an Idempotency-Key was reused with another request,
	// or is still running (after the client's retries).
	IdempotencyError struct{ *ResponseError }
	// RateLimitError: too many requests (after the client's retries).
	RateLimitError struct{ *ResponseError }
	// AuthenticationError: no valid API key (401).
	AuthenticationError struct{ *ResponseError }
	// PermissionError: the key may not do this (403).
	PermissionError struct{ *ResponseError }
	// APIError: the server failed (5xx, after the client's retries).
	APIError struct{ *ResponseError }
)

func (e *InvalidRequestError) Unwrap() error { return e.ResponseError }
func (e *CardError) Unwrap() error           { return e.ResponseError }
func (e *IdempotencyError) Unwrap() error    { return e.ResponseError }
func (e *RateLimitError) Unwrap() error      { return e.ResponseError }
func (e *AuthenticationError) Unwrap() error { return e.ResponseError }
func (e *PermissionError) Unwrap() error     { return e.ResponseError }
func (e *APIError) Unwrap() error            { return e.ResponseError }

// classOf is the class of an answer that names none (a proxy's answer, or
// a server older than the `type` member).
func classOf(status int, code string) string {
	switch {
	case status == http.StatusPaymentRequired:
		return TypeCard
	case status == http.StatusUnauthorized:
		return TypeAuthentication
	case status == http.StatusForbidden:
		return TypePermission
	case status == http.StatusTooManyRequests:
		return TypeRateLimit
	case strings.HasPrefix(code, "idempotency_key"):
		return TypeIdempotency
	case status >= 500:
		return TypeAPI
	}
	return TypeInvalidRequest
}

// ErrorFrom turns an error answer (status ≥ 400) into its typed error. It
// is what every service method returns; use it (or Check) with the
// generated API client's raw answers.
func ErrorFrom(status int, header http.Header, body []byte) error {
	var p struct {
		Type        string `json:"type"`
		Code        string `json:"code"`
		Param       string `json:"param"`
		DeclineCode string `json:"decline_code"`
		Payment     string `json:"payment"`
		Detail      string `json:"detail"`
		Title       string `json:"title"`
		RequestID   string `json:"request_id"`
	}
	_ = json.Unmarshal(body, &p) // a body that is not a problem still yields a typed error
	e := &ResponseError{
		Status: status, Type: p.Type, Code: p.Code, Param: p.Param, DeclineCode: p.DeclineCode,
		Payment: p.Payment, Message: p.Detail, RequestID: p.RequestID,
	}
	if e.Message == "" {
		e.Message = p.Title
	}
	if e.RequestID == "" && header != nil {
		e.RequestID = header.Get("Request-Id")
	}
	switch e.Type {
	case TypeInvalidRequest, TypeCard, TypeIdempotency, TypeRateLimit, TypeAuthentication, TypePermission, TypeAPI:
	default:
		// Absent, or RFC 9457's URI form: classify by status and code.
		e.Type = classOf(status, e.Code)
	}
	switch e.Type {
	case TypeCard:
		return &CardError{e}
	case TypeIdempotency:
		return &IdempotencyError{e}
	case TypeRateLimit:
		return &RateLimitError{e}
	case TypeAuthentication:
		return &AuthenticationError{e}
	case TypePermission:
		return &PermissionError{e}
	case TypeAPI:
		return &APIError{e}
	}
	return &InvalidRequestError{e}
}

// rawResponse is what every generated *...Response has.
type rawResponse interface {
	StatusCode() int
}

// Check returns nil for a 2xx answer of the generated API client and its
// typed error otherwise; err (a transport error) is returned as is.
//
//	res, err := client.API.AdminGetTenantWithResponse(ctx, id)
//	if err := payments.Check(res, res.Body, err); err != nil { ... }
func Check(res rawResponse, body []byte, err error) error {
	if err != nil {
		return err
	}
	if s := res.StatusCode(); s >= 400 {
		return ErrorFrom(s, nil, body)
	}
	return nil
}

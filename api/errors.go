package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/payments-api/payments/errcode"
	"github.com/payments-api/payments/idempotency"
	"github.com/payments-api/payments/processor"
)

// Problem is the error body of every failed request: RFC 9457 problem
// details (Huma's model) plus a stable machine code and, where they apply,
// the parameter at fault, the decline code and the payment.
type Problem struct {
	Type        string              `json:"type" enum:"invalid_request_error,card_error,idempotency_error,rate_limit_error,authentication_error,permission_error,api_error" doc:"The class of the error, to map it to an exception: invalid_request_error (the request was wrong; 400, 404, 405, 409, 413, 415), card_error (402), idempotency_error (the Idempotency-Key was reused or is in use), rate_limit_error (429), authentication_error (401), permission_error (403), api_error (500, 503: retry later). A relative URI reference in the sense of RFC 9457." example:"card_error"`
	Title       string              `json:"title" doc:"A short, human-readable summary of the problem type." example:"Payment Required"`
	Status      int                 `json:"status" doc:"The HTTP status code." example:"402"`
	Detail      string              `json:"detail,omitempty" doc:"A human-readable explanation of this occurrence." example:"Your card was declined."`
	Code        string              `json:"code" doc:"A stable, machine-readable error code." example:"card_declined"`
	Param       string              `json:"param,omitempty" doc:"The request parameter the error is about." example:"amount"`
	DeclineCode string              `json:"decline_code,omitempty" doc:"The card issuer's reason for a decline." example:"insufficient_funds"`
	Payment     string              `json:"payment,omitempty" doc:"The ID of the payment the error is about." example:"pay_06f0kb9t5q3e3bq4b7bw0vq2rc"`
	RequestID   string              `json:"request_id,omitempty" doc:"The Request-Id of the failed request, for support." example:"req_4fq3b0yb5e2x8h1m"`
	Errors      []*huma.ErrorDetail `json:"errors,omitempty" doc:"Details of each validation failure."`

	headers http.Header
}

// Error implements error.
func (p *Problem) Error() string { return p.Code + ": " + p.Detail }

// GetStatus implements huma.StatusError.
func (p *Problem) GetStatus() int { return p.Status }

// ContentType implements huma.ContentTypeFilter: problems are
// application/problem+json.
func (p *Problem) ContentType(ct string) string {
	if ct == "application/json" {
		return "application/problem+json"
	}
	return ct
}

// GetHeaders implements huma.HeadersError, carrying Retry-After.
func (p *Problem) GetHeaders() http.Header { return p.headers }

// replayed is a stored Idempotency-Key answer sent again: its status, its
// body byte for byte (jsonEncode compacts it, which it already is), and
// Idempotent-Replayed: true. The use case's claim of the key finds it, so
// a replay costs no look-up of its own before the handler.
type replayed struct {
	stored idempotency.Stored
}

func (r *replayed) Error() string  { return "idempotent replay" }
func (r *replayed) GetStatus() int { return r.stored.Status }

// ContentType is problem+json for a stored error.
func (r *replayed) ContentType(ct string) string {
	if r.stored.Status >= 400 && ct == "application/json" {
		return "application/problem+json"
	}
	return ct
}

func (r *replayed) GetHeaders() http.Header {
	return http.Header{"Idempotent-Replayed": []string{"true"}}
}

// MarshalJSON answers the stored body.
func (r *replayed) MarshalJSON() ([]byte, error) { return r.stored.Body, nil }

// statusOf is the one table from domain error kinds to HTTP statuses.
var statusOf = map[errcode.Kind]int{
	errcode.KindInternal:        http.StatusInternalServerError,
	errcode.KindInvalid:         http.StatusBadRequest,
	errcode.KindUnauthenticated: http.StatusUnauthorized,
	errcode.KindPaymentRequired: http.StatusPaymentRequired,
	errcode.KindForbidden:       http.StatusForbidden,
	errcode.KindNotFound:        http.StatusNotFound,
	errcode.KindConflict:        http.StatusConflict,
	// Well-formed but not acceptable is still the client's mistake: 400.
	errcode.KindUnprocessable: http.StatusBadRequest,
	errcode.KindRateLimited:   http.StatusTooManyRequests,
	errcode.KindUnavailable:   http.StatusServiceUnavailable,
	errcode.KindTooLarge:      http.StatusRequestEntityTooLarge,
}

// defaultCode names errors that Huma or the router raise without a code.
var defaultCode = map[int]string{
	http.StatusBadRequest:            errcode.CodeInvalidRequest,
	http.StatusUnauthorized:          errcode.CodeUnauthenticated,
	http.StatusForbidden:             "forbidden",
	http.StatusNotFound:              errcode.CodeResourceMissing,
	http.StatusMethodNotAllowed:      "method_not_allowed",
	http.StatusNotAcceptable:         "not_acceptable",
	http.StatusRequestTimeout:        "request_timeout",
	http.StatusConflict:              "conflict",
	http.StatusRequestEntityTooLarge: errcode.CodeRequestTooLarge,
	http.StatusUnsupportedMediaType:  "unsupported_media_type",
	http.StatusTooManyRequests:       errcode.CodeRateLimited,
	http.StatusInternalServerError:   errcode.CodeInternal,
	http.StatusServiceUnavailable:    errcode.CodeUnavailable,
}

func newProblem(ctx context.Context, status int, code, detail string) *Problem {
	if code == "" {
		code = defaultCode[status]
		if code == "" {
			code = "error"
		}
	}
	return &Problem{
		Type:      errorTypeOf(status, code),
		Title:     http.StatusText(status),
		Status:    status,
		Detail:    detail,
		Code:      code,
		RequestID: requestIDFrom(ctx),
	}
}

// fromHuma builds the problem for errors that Huma raises itself
// (validation, body parsing, body size).
func fromHuma(ctx context.Context, status int, msg string, errs ...error) *Problem {
	for _, e := range errs {
		if p, ok := e.(*Problem); ok {
			return p
		}
	}
	var details []*huma.ErrorDetail
	for _, e := range errs {
		if e == nil {
			continue
		}
		if d, ok := e.(huma.ErrorDetailer); ok {
			details = append(details, d.ErrorDetail())
		} else {
			// Causes such as driver errors stay out of the answer.
			continue
		}
	}
	// One rule for invalid requests: everything the client sent wrong
	// answers 400 with a code and, where one is at fault, the param. Huma
	// answers 422 for a body that parses but does not validate.
	validation := status == http.StatusUnprocessableEntity
	if validation {
		status = http.StatusBadRequest
	}
	p := newProblem(ctx, status, "", msg)
	if validation {
		p.Code = errcode.CodeParameterInvalid
	}
	p.Errors = details
	if validation && len(details) > 0 {
		first := details[0]
		p.Param = strings.TrimPrefix(strings.TrimPrefix(first.Location, "body."), "query.")
		p.Param = strings.TrimPrefix(p.Param, "path.")
		// A missing property is the property's fault, not the body's.
		if name, ok := strings.CutPrefix(first.Message, "expected required property "); ok {
			name, _, _ = strings.Cut(name, " ")
			if p.Param == "body" {
				p.Param = name
			} else {
				p.Param += "." + name
			}
		}
		if strings.Contains(first.Message, "unexpected property") {
			p.Code = "parameter_unknown"
		}
		p.Detail = msg + ": " + first.Message
		if first.Location != "" {
			p.Detail += " (" + first.Location + ")"
		}
	}
	if !validation && status == http.StatusBadRequest && len(details) > 0 && details[0].Location == "body" {
		p.Code = "invalid_json"
		p.Detail = "the request body is not valid JSON: " + details[0].Message
		p.Errors = nil // the detail would echo the body back
	}
	if status == http.StatusInternalServerError {
		p.Detail = "an internal error occurred"
		p.Errors = nil
	}
	return p
}

func init() {
	huma.NewErrorWithContext = func(ctx huma.Context, status int, msg string, errs ...error) huma.StatusError {
		var c context.Context = context.Background()
		if ctx != nil {
			c = ctx.Context()
		}
		return fromHuma(c, status, msg, errs...)
	}
	huma.NewError = func(status int, msg string, errs ...error) huma.StatusError {
		return fromHuma(context.Background(), status, msg, errs...)
	}
}

// problemFrom translates any error a use case returns into the problem the
// client sees. Unknown errors become a 500 whose cause is logged, not shown.
func problemFrom(ctx context.Context, err error) *Problem {
	var p *Problem
	if errors.As(err, &p) {
		return p
	}
	var replay *idempotency.Replay
	if errors.As(err, &replay) {
		// Only a use case called from outside a handler gets here; its
		// caller answers the stored body itself.
		return newProblem(ctx, http.StatusConflict, errcode.CodeIdempotencyInFlight, "this Idempotency-Key's request has completed; retry to receive its answer")
	}
	e := errcode.As(err)
	if e == nil && ctx.Err() == context.DeadlineExceeded && errors.Is(err, context.DeadlineExceeded) {
		// The edge's bound on the request passed (edge's timeout): the
		// service is too slow right now, not broken.
		noteError(ctx, err)
		e = &errcode.Error{Kind: errcode.KindUnavailable, Code: errcode.CodeUnavailable,
			Message: "the request did not finish in time; retry it with the same Idempotency-Key"}
	}
	if e == nil {
		e = errcode.Internal(err)
	}
	status, ok := statusOf[e.Kind]
	if !ok {
		status = http.StatusInternalServerError
	}
	p = newProblem(ctx, status, e.Code, e.Message)
	p.Param, p.DeclineCode, p.Payment = e.Param, e.DeclineCode, e.Payment
	if status == http.StatusInternalServerError {
		noteError(ctx, err)
	}
	if status == http.StatusServiceUnavailable {
		// An open circuit breaker says how long it stays open.
		secs := max(ceilSeconds(processor.RetryAfterOf(err)), 1)
		p.headers = http.Header{"Retry-After": []string{strconv.Itoa(secs)}}
	}
	return p
}

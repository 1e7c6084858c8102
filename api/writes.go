package api

import (
	"bytes"
	"context"
	"io"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
	"github.com/google/uuid"

	"github.com/payments-api/payments/carddata"
	"github.com/payments-api/payments/errcode"
	"github.com/payments-api/payments/idempotency"
)

// CodeCardDataNotAllowed answers a request that carries what looks like a
// card number: the service never holds card data.
const CodeCardDataNotAllowed = "card_data_not_allowed"

// humaContext lets bodyContext embed huma.Context under another field name
// (the interface has a method named Context).
type humaContext = huma.Context

// bodyContext replays a body that the middleware already read.
type bodyContext struct {
	humaContext
	body []byte
}

func (c *bodyContext) BodyReader() io.Reader { return bytes.NewReader(c.body) }

// guardWrite runs before every tenant write: it reads the body once (at most
// BodyBytesMax), refuses card data anywhere in it, and applies the
// Idempotency-Key contract. It returns the context to continue with, or nil
// when it has answered already.
//
// scope is the tenant whose keys the Idempotency-Key lives among, or
// adminScope for admin writes.
func (s *Server) guardWrite(ctx huma.Context, scope uuid.UUID) huma.Context {
	rctx := ctx.Context()
	var body []byte
	if r := ctx.BodyReader(); r != nil {
		b, err := io.ReadAll(io.LimitReader(r, BodyBytesMax+1))
		if err != nil {
			s.fail(ctx, newProblem(rctx, http.StatusBadRequest, errcode.CodeInvalidRequest, "the request body could not be read"))
			return nil
		}
		if len(b) > BodyBytesMax {
			s.fail(ctx, newProblem(rctx, http.StatusRequestEntityTooLarge, errcode.CodeRequestTooLarge, "the request body is larger than 65536 bytes"))
			return nil
		}
		body = b
	}
	if prob := checkBody(rctx, s.API.OpenAPI().Components.Schemas, ctx.Operation(), body); prob != nil {
		s.fail(ctx, prob)
		return nil
	}
	if carddata.Contains(body) || carddata.Contains([]byte(ctx.URL().RawQuery)) {
		prob := newProblem(rctx, http.StatusBadRequest, CodeCardDataNotAllowed,
			"the request contains what looks like a card number; send a payment method token such as pm_card_visa, never card data")
		s.fail(ctx, prob)
		return nil
	}
	next := huma.Context(&bodyContext{humaContext: ctx, body: body})
	key := ctx.Header("Idempotency-Key")
	if key == "" {
		return next
	}
	if err := idempotency.ValidateKey(key); err != nil {
		s.fail(ctx, problemFrom(rctx, err))
		return nil
	}
	// The key is stored: it must not carry card data either.
	if carddata.Contains([]byte(key)) {
		prob := newProblem(rctx, http.StatusBadRequest, CodeCardDataNotAllowed,
			"the Idempotency-Key contains what looks like a card number; use a random value such as a UUID")
		prob.Param = "Idempotency-Key"
		s.fail(ctx, prob)
		return nil
	}
	path := ctx.URL().Path
	req := &idempotency.Request{
		TenantID: scope, Key: key, Method: ctx.Method(), Path: path,
		Fingerprint: idempotency.Fingerprint(ctx.Method(), path, body), Lease: s.cfg.IdempotencyLease,
	}
	// No look-up here: the use case's claim of the key, inside its first
	// transaction, finds a stored answer (replayed by handle), a key in
	// flight or reused with another request.
	return huma.WithContext(next, idempotency.WithRequest(rctx, req))
}

// storeAs tells the idempotency record how the handler renders its answer:
// with the same encoder and the same value, so the stored answer is byte for
// byte what the client got. view maps the use case's result to the body.
func storeAs(ctx context.Context, status int, view func(any) any) {
	r := idempotency.From(ctx)
	if r == nil {
		return
	}
	r.SetRenderer(func(result any, err error) (int, []byte, error) {
		var buf bytes.Buffer
		if err != nil {
			p := problemFrom(ctx, err)
			e := jsonEncode(&buf, p)
			return p.Status, buf.Bytes(), e
		}
		e := jsonEncode(&buf, view(result))
		return status, buf.Bytes(), e
	})
}

func isWrite(method string) bool {
	return method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch || method == http.MethodDelete
}

package api

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"reflect"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/payments-api/payments/errcode"
	"github.com/payments-api/payments/idempotency"
	"github.com/payments-api/payments/secretbox"
)

// adminScope is the idempotency scope of admin writes: their keys live in
// the directory database's idempotency_keys under the nil tenant ID, which
// no tenant has (tenant IDs are random), so an operator's keys never meet a
// tenant's.
var adminScope = uuid.Nil

// newAdminBox derives the key that seals stored admin answers from the
// admin token. Those answers can carry a tenant's first secret key, which
// is otherwise stored only hashed; sealed, the record in the database is
// useless without the token. A new token makes older records unreadable,
// which answers idempotency_key_in_use until they expire.
func newAdminBox(token string) *secretbox.Box {
	mac := hmac.New(sha256.New, []byte(token))
	mac.Write([]byte("payments admin idempotency answers v1"))
	b, err := secretbox.New(mac.Sum(nil))
	if err != nil {
		panic(err) // a SHA-256 sum is always a valid key
	}
	return b
}

var errAdminReplaySealed = errcode.New(errcode.KindConflict, errcode.CodeIdempotencyInFlight,
	"this Idempotency-Key's answer was stored under another admin token and cannot be replayed; use a new key")

// adminWrite gives an admin write the Idempotency-Key contract of tenant
// writes: the same key and request replays the stored answer (status and
// body byte for byte, Idempotent-Replayed: true), another request under the
// key answers 400 idempotency_key_reused, and a key in flight 409. The
// claim and the answer live on the directory database; a handler whose
// effect commits there completes the record in that same transaction
// (idempotency.From(ctx).Complete), others are completed after they return.
// A request that fails stores nothing: every admin write either left no
// effect when it failed or has the same effect when repeated.
func adminWrite[I, O any](s *Server, status int, h func(context.Context, *I) (*O, error)) func(context.Context, *I) (*O, error) {
	return func(ctx context.Context, in *I) (*O, error) {
		r := idempotency.From(ctx)
		if r == nil || s.adminBox == nil {
			return h(ctx, in)
		}
		r.SetRenderer(func(result any, err error) (int, []byte, error) {
			if err != nil {
				return 0, nil, errors.New("admin answers are stored only on success")
			}
			var buf bytes.Buffer
			if e := jsonEncode(&buf, bodyOf(result)); e != nil {
				return 0, nil, e
			}
			sealed, e := s.adminBox.Seal(buf.Bytes(), []byte(r.Key))
			return status, sealed, e
		})
		dir := s.cfg.Router.Map().Directory()
		err := dir.Tx.Run(ctx, func(ctx context.Context, tx pgx.Tx) error {
			_, err := r.Claim(ctx, tx)
			return err
		})
		var replay *idempotency.Replay
		if errors.As(err, &replay) {
			body, oerr := s.adminBox.Open(replay.Body, []byte(r.Key))
			if oerr != nil {
				return nil, errAdminReplaySealed
			}
			return nil, &idempotency.Replay{Stored: idempotency.Stored{Status: replay.Status, Body: body}}
		}
		if err != nil {
			return nil, err
		}
		out, err := h(ctx, in)
		if err != nil {
			if aerr := r.Abandon(context.WithoutCancel(ctx), dir.Pool); aerr != nil {
				noteError(ctx, aerr)
			}
			return nil, err
		}
		if !r.Completed() {
			if err := dir.Tx.Run(ctx, func(ctx context.Context, tx pgx.Tx) error { return r.Complete(ctx, tx, out, nil) }); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
}

// bodyOf is the Body field of a Huma output struct: what the client gets.
func bodyOf(out any) any {
	v := reflect.ValueOf(out)
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return nil
		}
		v = v.Elem()
	}
	if v.Kind() == reflect.Struct {
		if f := v.FieldByName("Body"); f.IsValid() {
			return f.Interface()
		}
	}
	return out
}

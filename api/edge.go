package api

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/danielgtaylor/huma/v2"

	"github.com/payments-api/payments/carddata"
	"github.com/payments-api/payments/errcode"
)

// The edge refuses, before routing, what no operation may receive: a card
// number anywhere in the URL, and a NUL or invalid UTF-8 in the path or a
// query parameter. Bodies get the same checks in guardWrite, plus explicit
// nulls where the schema does not allow them (checkBody).

// checkURL returns the problem of a URL the edge refuses, or nil.
func checkURL(r *http.Request) *Problem {
	ctx := r.Context()
	raw := r.URL.RawQuery
	if carddata.Contains([]byte(r.URL.Path)) || (raw != "" && (carddata.Contains([]byte(raw)) || carddata.Contains([]byte(queryDecoded(raw))))) {
		return newProblem(ctx, http.StatusBadRequest, CodeCardDataNotAllowed,
			"the URL contains what looks like a card number; send a payment method token such as pm_card_visa, never card data")
	}
	if bad(r.URL.Path) {
		p := newProblem(ctx, http.StatusBadRequest, errcode.CodeInvalidRequest, "the path contains a NUL character or invalid UTF-8")
		p.Param = "path"
		return p
	}
	if raw == "" {
		return nil
	}
	q, err := url.ParseQuery(raw)
	if err != nil {
		return newProblem(ctx, http.StatusBadRequest, errcode.CodeInvalidRequest, "the query string is not valid")
	}
	for name, vs := range q {
		for _, v := range vs {
			if bad(name) || bad(v) {
				p := newProblem(ctx, http.StatusBadRequest, errcode.CodeParameterInvalid, "a query parameter contains a NUL character or invalid UTF-8")
				if !bad(name) {
					p.Param = name
				}
				return p
			}
		}
	}
	return nil
}

// queryDecoded is the query with percent-escapes decoded, so that
// "4242%204242..." is seen as the card number it spells.
func queryDecoded(raw string) string {
	if !strings.ContainsAny(raw, "%+") {
		return raw
	}
	if s, err := url.QueryUnescape(raw); err == nil {
		return s
	}
	return raw
}

func bad(s string) bool { return strings.IndexByte(s, 0) >= 0 || !utf8.ValidString(s) }

// checkBody returns the problem of a JSON body the schema's validation
// would let through wrongly: invalid UTF-8 (which decoding would silently
// replace), NUL in a string, and an explicit null for a field whose schema
// does not allow null (Huma skips nulls of optional fields, so
// "amount": null would mean "absent").
func checkBody(rctx context.Context, reg huma.Registry, op *huma.Operation, body []byte) *Problem {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	if !utf8.Valid(body) {
		return newProblem(rctx, http.StatusBadRequest, errcode.CodeInvalidRequest, "the request body is not valid UTF-8")
	}
	// Most bodies have neither: they cost no second decoding. A NUL in a
	// valid JSON string can only be the escape \u0000.
	hasNUL, hasNull := bytes.Contains(body, []byte(`\u0000`)), bytes.Contains(body, []byte("null"))
	if !hasNUL && !hasNull {
		return nil
	}
	v, ok := decodeForChecks(body)
	if !ok {
		return nil // Huma answers invalid_json with its own detail
	}
	var schema *huma.Schema
	if op.RequestBody != nil {
		if mt := op.RequestBody.Content["application/json"]; mt != nil {
			schema = mt.Schema
		}
	}
	if param, ok := findNUL(v, ""); ok {
		p := newProblem(rctx, http.StatusBadRequest, errcode.CodeParameterInvalid, "a string contains a NUL character")
		p.Param = param
		return p
	}
	if param, ok := findNull(reg, schema, v, ""); ok {
		p := newProblem(rctx, http.StatusBadRequest, errcode.CodeParameterInvalid, param+" must not be null: leave it out instead")
		p.Param = param
		return p
	}
	return nil
}

// decodeForChecks decodes a body for checkBody's walks.
func decodeForChecks(body []byte) (any, bool) {
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return nil, false
	}
	return v, true
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

// findNUL reports the first string (or object key) of v holding a NUL.
func findNUL(v any, path string) (string, bool) {
	switch x := v.(type) {
	case string:
		return path, strings.IndexByte(x, 0) >= 0
	case map[string]any:
		for k, e := range x {
			if strings.IndexByte(k, 0) >= 0 {
				return path, true
			}
			if p, ok := findNUL(e, join(path, k)); ok {
				return p, true
			}
		}
	case []any:
		for i, e := range x {
			if p, ok := findNUL(e, join(path, strconv.Itoa(i))); ok {
				return p, true
			}
		}
	}
	return "", false
}

// findNull reports the first explicit null of v whose schema does not allow
// null. Fields the schema does not know are left to Huma's validation.
func findNull(reg huma.Registry, s *huma.Schema, v any, path string) (string, bool) {
	if s != nil && s.Ref != "" {
		s = reg.SchemaFromRef(s.Ref)
	}
	if s == nil {
		return "", false
	}
	switch x := v.(type) {
	case nil:
		return path, !s.Nullable
	case map[string]any:
		for k, e := range x {
			if ps, ok := s.Properties[k]; ok {
				if p, bad := findNull(reg, ps, e, join(path, k)); bad {
					return p, true
				}
			} else if s.AdditionalProperties != nil {
				if as, ok := s.AdditionalProperties.(*huma.Schema); ok {
					if p, bad := findNull(reg, as, e, join(path, k)); bad {
						return p, true
					}
				}
			}
		}
	case []any:
		for i, e := range x {
			if p, bad := findNull(reg, s.Items, e, join(path, strconv.Itoa(i))); bad {
				return p, true
			}
		}
	}
	return "", false
}

// redactPath replaces every segment of a path that holds a card number.
func redactPath(p string) string {
	if !carddata.Contains([]byte(p)) && !carddata.Contains([]byte(queryDecoded(p))) {
		return p
	}
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if carddata.Contains([]byte(s)) || carddata.Contains([]byte(queryDecoded(s))) {
			segs[i] = "[redacted]"
		}
	}
	out := strings.Join(segs, "/")
	if carddata.Contains([]byte(out)) {
		return "[redacted]"
	}
	return out
}

package api

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/payments-api/payments/events"
)

// The OpenAPI document is the contract: this file holds what Huma does not
// derive from the Go types. Schema names are the public names, nullable
// objects are declared nullable, an event's data.object is a oneOf with a
// discriminator, and every answer declares the headers the edge sets.

func init() {
	// Lists are never null: every list field is answered as [] when empty.
	huma.DefaultArrayNullable = false
}

const schemaPrefix = "#/components/schemas/"

// publicSchemaNames maps the Go type names Huma would use to the names SDKs
// expose.
var publicSchemaNames = map[string]string{
	"View":                    "Payment",
	"LocationView":            "PaymentLocation",
	"NextActionView":          "PaymentNextAction",
	"RefundView":              "Refund",
	"DisputeView":             "Dispute",
	"PayoutView":              "Payout",
	"PayoutAccountView":       "PayoutAccount",
	"EventView":               "Event",
	"EventDataView":           "EventData",
	"EndpointView":            "WebhookEndpoint",
	"DeletedView":             "DeletedWebhookEndpoint",
	"DeliveryView":            "WebhookDelivery",
	"AttemptView":             "WebhookDeliveryAttempt",
	"BalanceTransactionView":  "BalanceTransaction",
	"BalanceView":             "Balance",
	"BalanceTxList":           "BalanceTransactionList",
	"EndpointList":            "WebhookEndpointList",
	"DeliveryList":            "WebhookDeliveryList",
	"KeyList":                 "APIKeyList",
	"Problem":                 "Error",
	"HealthBody":              "Health",
	"CreateEndpointInputBody": "CreateWebhookEndpointRequest",
	"UpdateEndpointInputBody": "UpdateWebhookEndpointRequest",
}

// schemaName names a schema by its public name: request bodies end in
// Request, other bodies in Response.
func schemaName(t reflect.Type, hint string) string {
	n := huma.DefaultSchemaNamer(t, hint)
	if p, ok := publicSchemaNames[n]; ok {
		return p
	}
	if base, ok := strings.CutSuffix(n, "InputBody"); ok {
		return base + "Request"
	}
	if base, ok := strings.CutSuffix(n, "OutputBody"); ok {
		return base + "Response"
	}
	return n
}

// Error type classes: an SDK maps an error by its type and code.
const (
	ErrorTypeInvalidRequest = "invalid_request_error"
	ErrorTypeCard           = "card_error"
	ErrorTypeIdempotency    = "idempotency_error"
	ErrorTypeRateLimit      = "rate_limit_error"
	ErrorTypeAuthentication = "authentication_error"
	ErrorTypePermission     = "permission_error"
	ErrorTypeAPI            = "api_error"
)

// errorTypeOf classes an answer by its status and code.
func errorTypeOf(status int, code string) string {
	switch {
	case strings.HasPrefix(code, "idempotency_key"):
		return ErrorTypeIdempotency
	case status == http.StatusPaymentRequired:
		return ErrorTypeCard
	case status == http.StatusUnauthorized:
		return ErrorTypeAuthentication
	case status == http.StatusForbidden:
		return ErrorTypePermission
	case status == http.StatusTooManyRequests:
		return ErrorTypeRateLimit
	case status >= 500:
		return ErrorTypeAPI
	default:
		return ErrorTypeInvalidRequest
	}
}

var responseHeaderDocs = map[string]*huma.Param{
	"Request-Id": {Description: "The request's ID; quote it to support. Every answer carries it.", Required: true,
		Schema: &huma.Schema{Type: huma.TypeString, Examples: []any{"req_4fq3b0yb5e2x8h1m0a9c2d7e"}}},
	"RateLimit-Limit": {Description: "The tenant's burst: requests allowed at once.",
		Schema: &huma.Schema{Type: huma.TypeInteger, Examples: []any{100}}},
	"RateLimit-Remaining": {Description: "Requests left in the current burst.",
		Schema: &huma.Schema{Type: huma.TypeInteger, Examples: []any{99}}},
	"RateLimit-Reset": {Description: "Seconds until the burst is full again.",
		Schema: &huma.Schema{Type: huma.TypeInteger, Examples: []any{1}}},
	"Retry-After": {Description: "Seconds to wait before retrying.",
		Schema: &huma.Schema{Type: huma.TypeInteger, Examples: []any{1}}},
	"Idempotent-Replayed": {Description: "true when the answer is the stored answer of an earlier request with the same Idempotency-Key.",
		Schema: &huma.Schema{Type: huma.TypeString, Enum: []any{"true"}}},
	"Allow": {Description: "The methods the path accepts.", Required: true,
		Schema: &huma.Schema{Type: huma.TypeString, Examples: []any{"GET, POST"}}},
}

// finishSpec completes the document once every operation is registered.
func finishSpec(doc *huma.OpenAPI) {
	reg := doc.Components.Schemas
	inlineNullableObjects(doc, reg)
	for _, s := range reg.Map() {
		for _, p := range s.Properties {
			if p.Nullable && len(p.Enum) > 0 && !containsNil(p.Enum) {
				p.Enum = append(p.Enum, nil)
			}
		}
	}
	if ev := reg.Map()["Event"]; ev != nil {
		t := ev.Properties["type"]
		t.Enum = nil
		for _, et := range events.Types {
			t.Enum = append(t.Enum, string(et))
		}
	}
	if data := reg.Map()["EventData"]; data != nil {
		old := data.Properties["object"]
		data.Properties["object"] = &huma.Schema{
			Description: old.Description,
			OneOf: []*huma.Schema{
				{Ref: schemaPrefix + "Payment"}, {Ref: schemaPrefix + "Refund"}, {Ref: schemaPrefix + "WebhookEndpoint"},
				{Ref: schemaPrefix + "Dispute"}, {Ref: schemaPrefix + "Payout"},
			},
			Discriminator: &huma.Discriminator{PropertyName: "object", Mapping: map[string]string{
				"payment": schemaPrefix + "Payment", "refund": schemaPrefix + "Refund", "dispute": schemaPrefix + "Dispute", "webhook_endpoint": schemaPrefix + "WebhookEndpoint",
				"payout": schemaPrefix + "Payout",
			}},
		}
	}
	// /readyz answers its checks on 503 too, as a Health body, not an Error.
	if item := doc.Paths["/readyz"]; item != nil && item.Get != nil {
		rs := item.Get.Responses
		if rs["200"] != nil && rs["503"] != nil {
			rs["503"].Content = rs["200"].Content
		}
	}
	for _, item := range doc.Paths {
		for _, op := range []*huma.Operation{item.Get, item.Post, item.Put, item.Patch, item.Delete} {
			if op != nil {
				documentHeaders(op)
			}
		}
	}
}

// inlineNullableObjects declares every pointer-to-struct field of a
// response object as a nullable object. JSON Schema cannot make a $ref
// nullable in a way that both OpenAPI 3.1 and 3.0 tools read, so the object
// is written inline with type [object, null] (nullable: true in 3.0).
func inlineNullableObjects(doc *huma.OpenAPI, reg huma.Registry) {
	inlined := map[string]bool{}
	for name, s := range reg.Map() {
		t := reg.TypeFromRef(schemaPrefix + name)
		if t == nil || t.Kind() != reflect.Struct {
			continue
		}
		// VisibleFields: the fields of embedded structs are the object's
		// properties too.
		for _, f := range reflect.VisibleFields(t) {
			if f.Anonymous || !f.IsExported() {
				continue
			}
			pointer := f.Type.Kind() == reflect.Pointer && f.Type.Elem().Kind() == reflect.Struct
			jname, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			p := s.Properties[jname]
			if p == nil || p.Ref == "" {
				continue
			}
			// A struct that is always there keeps its $ref, unless the
			// field describes it: OpenAPI 3.0 ignores (and linters refuse)
			// a description beside a $ref, so such a field is inlined too.
			if !pointer && (f.Type.Kind() != reflect.Struct || p.Description == "") {
				continue
			}
			target := reg.SchemaFromRef(p.Ref)
			if target == nil || target.Type != huma.TypeObject {
				continue
			}
			in := *target
			in.Nullable = pointer
			if p.Description != "" {
				in.Description = p.Description
			}
			s.Properties[jname] = &in
			inlined[strings.TrimPrefix(p.Ref, schemaPrefix)] = true
		}
	}
	// Drop the components nothing refers to any more.
	b, _ := json.Marshal(doc)
	for name := range inlined {
		if !strings.Contains(string(b), strconv.Quote(schemaPrefix+name)) {
			delete(reg.Map(), name)
		}
	}
}

func containsNil(xs []any) bool {
	for _, x := range xs {
		if x == nil {
			return true
		}
	}
	return false
}

// documentHeaders declares on each answer of op the headers the edge sets.
func documentHeaders(op *huma.Operation) {
	tenant := requires(op, schemeSecretKey)
	idempotent := false
	for _, p := range op.Parameters {
		if p.In == "header" && p.Name == "Idempotency-Key" {
			idempotent = true
		}
	}
	for code, resp := range op.Responses {
		status, _ := strconv.Atoi(code)
		if resp.Headers == nil {
			resp.Headers = map[string]*huma.Param{}
		}
		add := func(name string, required bool) {
			p := *responseHeaderDocs[name]
			p.Required = required
			resp.Headers[name] = &p
		}
		add("Request-Id", true)
		if tenant && status != http.StatusMethodNotAllowed {
			// Every answer after authentication carries them; answers
			// before it (401, a 429 of the per-address limit) may not.
			add("RateLimit-Limit", status < 300)
			add("RateLimit-Remaining", status < 300)
			add("RateLimit-Reset", status < 300)
		}
		if status == http.StatusTooManyRequests {
			add("Retry-After", true)
		}
		if status == http.StatusServiceUnavailable {
			add("Retry-After", false)
		}
		if idempotent && status != http.StatusMethodNotAllowed {
			add("Idempotent-Replayed", false)
		}
		if status == http.StatusMethodNotAllowed {
			add("Allow", true)
		}
	}
}

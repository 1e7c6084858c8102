// Package api is the HTTP edge: a Huma v2 API on the standard library's
// server. One file per resource registers its operations; middleware.go
// holds request IDs, logging and metrics; errors.go holds the one table from
// domain errors to HTTP answers. The edge writes no SQL: it calls the
// domain packages.
package api

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/payments-api/payments/accounts"
	"github.com/payments-api/payments/errcode"
	"github.com/payments-api/payments/idempotency"
	"github.com/payments-api/payments/ids"
	"github.com/payments-api/payments/payments"
	"github.com/payments-api/payments/processor/sandbox"
	"github.com/payments-api/payments/risk"
	"github.com/payments-api/payments/secretbox"
	"github.com/payments-api/payments/sharding"
	"github.com/payments-api/payments/tenancy"
	"github.com/payments-api/payments/webhooks"
)

// Limits of the edge.
const (
	// BodyBytesMax is the largest request body accepted; larger answers 413.
	BodyBytesMax = 64 << 10
	// ReadinessTimeout bounds each dependency check of /readyz.
	ReadinessTimeout = 2 * time.Second
)

// Security scheme names in the OpenAPI document.
const (
	schemeSecretKey  = "secretKey"
	schemeAdminToken = "adminToken"
)

// Config holds the dependencies of the HTTP edge.
type Config struct {
	Tenancy     *tenancy.Service
	RateLimiter *tenancy.RateLimiter
	Router      *sharding.Router
	Redis       redis.UniversalClient
	Payments    *payments.Service
	// Risk, when set, holds the tenants' location risk rules, evaluated
	// on payment creation in the rate limit's round trip.
	Risk     *risk.Service
	Webhooks *webhooks.Service
	// Sandbox is the sandbox processor when it is the active processor,
	// else nil; it enables the sandbox-only routes.
	Sandbox *sandbox.Sandbox
	// StripeWebhookSecrets are the platform Stripe account's webhook
	// signing secrets (STRIPE_WEBHOOK_SECRET); none refuses every event of
	// /v1/stripe/webhooks.
	StripeWebhookSecrets []string
	// StripeAccounts stores tenants' own Stripe accounts; nil disables
	// them.
	StripeAccounts *accounts.Store
	AdminToken     string
	Logger         *slog.Logger
	// Registry receives the edge's metrics and is served at /metrics.
	Registry *prometheus.Registry
	// IdempotencyLease is how long a request's claim of its
	// Idempotency-Key blocks retries; zero means idempotency.LeaseDefault.
	// It must exceed the longest a request may run.
	IdempotencyLease time.Duration
	// RequestTimeout bounds each request: past it, the request's context
	// ends and it answers 503. Zero means the payments service's longest
	// request plus RequestTimeoutSlack. The server's connection deadlines
	// must outlast it.
	RequestTimeout time.Duration
}

// RequestTimeoutSlack is what the default request bound adds to the
// payments service's longest request (its processor call plus the
// detached recording of the outcome), so that a request's own steps time
// out before the edge does.
const RequestTimeoutSlack = 5 * time.Second

// Server is the assembled HTTP handler and its API description.
type Server struct {
	Handler http.Handler
	API     huma.API
	cfg     Config
	// adminBox seals the stored answers of admin writes (see
	// admin_idempotency.go).
	adminBox *secretbox.Box
}

// SpecVersion is the version of the API contract, a date like the API
// versions merchants know; it changes when the contract changes, not with
// every build.
const SpecVersion = "2026-11-25"

// OpenAPIConfig returns the Huma configuration of the API: title, version,
// servers and security schemes.
func OpenAPIConfig() huma.Config {
	c := huma.DefaultConfig("Payments API", SpecVersion)
	c.Info.Description = "A multi-tenant payments API: card payments, refunds, a double-entry ledger and signed webhooks. " +
		"Authenticate with a secret key: `Authorization: Bearer sk_test_...`. Amounts are integers in the currency's minor unit."
	c.Components.Schemas = huma.NewMapRegistry(schemaPrefix, schemaName)
	c.Info.Contact = &huma.Contact{Name: "Payments API maintainers"}
	// No licence file grants rights to the code or the document.
	c.Info.License = &huma.License{Name: "Proprietary"}
	c.Servers = []*huma.Server{{URL: "http://127.0.0.1:8080", Description: "The local server that `make run` starts."}}
	c.Tags = []*huma.Tag{
		{Name: "Payments", Description: "Card payments: create, capture, cancel, list."},
		{Name: "Refunds", Description: "Refunds of succeeded payments."},
		{Name: "Payouts", Description: "Money paid out of the balance to the merchant's bank or connected account."},
		{Name: "Events", Description: "What happened to payments, refunds and webhook endpoints, newest first; the bodies webhooks deliver."},
		{Name: "Webhook endpoints", Description: "Where events are sent, signed, and their deliveries."},
		{Name: "Balance", Description: "The tenant's balance and the ledger's balance transactions."},
		{Name: "Account", Description: "The authenticated tenant."},
		{Name: "Admin", Description: "Operator routes: tenants, keys, reconciliation and Stripe accounts, with the admin token."},
		{Name: "Stripe", Description: "Signed events from Stripe."},
		{Name: "Sandbox", Description: "What a customer does at the bank, for the sandbox processor only."},
		{Name: "Health", Description: "Liveness and readiness."},
	}
	c.Components.SecuritySchemes = map[string]*huma.SecurityScheme{
		schemeSecretKey: {
			Type: "http", Scheme: "bearer", BearerFormat: "sk_test_... or sk_live_...",
			Description: "A tenant's secret API key. Keys are shown once when created; store them safely.",
		},
		schemeAdminToken: {
			Type: "http", Scheme: "bearer",
			Description: "The operator's admin token (PAYMENTS_ADMIN_TOKEN), for /v1/admin routes only.",
		},
		schemeStripeSignature: {
			Type: "apiKey", In: "header", Name: "Stripe-Signature",
			Description: "Stripe's HMAC-SHA256 signature of the raw body, for /v1/stripe/webhooks routes only; verified with the account's webhook signing secret.",
		},
	}
	// No "$schema" member or Link header in answers: bodies are exactly the
	// documented objects, as clients and SDKs expect.
	c.CreateHooks = nil
	c.OpenAPIPath = "/openapi"
	// /docs is served from embedded assets (docs.go), not Huma's page,
	// which loads its scripts from a public CDN.
	c.DocsPath = ""
	c.SchemasPath = "/schemas"
	return c
}

// New assembles the HTTP handler: routes, middleware and the API document.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	mux := http.NewServeMux()
	hc := OpenAPIConfig()
	// One JSON encoder for every answer, the same one that renders stored
	// idempotent answers.
	hc.Formats = map[string]huma.Format{
		"application/json": {Marshal: jsonEncode, Unmarshal: json.Unmarshal},
		"json":             {Marshal: jsonEncode, Unmarshal: json.Unmarshal},
	}
	api := humago.New(mux, hc)
	s := &Server{API: api, cfg: cfg}
	if cfg.AdminToken != "" {
		s.adminBox = newAdminBox(cfg.AdminToken)
	}
	api.UseMiddleware(s.authenticate)

	registerHealth(api, s)
	registerAccount(api, s)
	registerRegions(api, s)
	registerAdmin(api, s)
	registerPayments(api, s)
	registerNearby(api, s)
	registerRiskRules(api, s)
	registerRefunds(api, s)
	registerDisputes(api, s)
	registerPayouts(api, s)
	registerEvents(api, s)
	registerBalance(api, s)
	registerSandbox(api, s)
	registerStripe(api, s)
	registerWebhookEndpoints(api, s)

	finishSpec(api.OpenAPI())

	registerDocs(mux)
	mux.Handle("GET /metrics", promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{}))
	metrics := newHTTPMetrics(cfg.Registry)
	root := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := checkURL(r); p != nil {
			writeProblem(w, p)
			return
		}
		if _, pattern := mux.Handler(r); pattern == "" {
			if allow := allowedMethods(mux, r); len(allow) > 0 {
				p := newProblem(r.Context(), http.StatusMethodNotAllowed, "", r.Method+" is not allowed on "+r.URL.Path+"; use "+strings.Join(allow, ", "))
				p.headers = http.Header{"Allow": []string{strings.Join(allow, ", ")}}
				writeProblem(w, p)
				return
			}
			writeProblem(w, newProblem(r.Context(), http.StatusNotFound, "", "no such route: "+r.Method+" "+r.URL.Path))
			return
		}
		mux.ServeHTTP(w, r)
	})
	timeout := cfg.RequestTimeout
	if timeout == 0 && cfg.Payments != nil {
		timeout = cfg.Payments.RequestDurationMax() + RequestTimeoutSlack
	}
	s.Handler = edge(root, cfg.Logger, metrics, timeout)
	return s
}

// routeMethods are the methods a route may have; allowedMethods tries each.
var routeMethods = []string{http.MethodDelete, http.MethodGet, http.MethodPatch, http.MethodPost, http.MethodPut}

// allowedMethods lists the methods that have a route for r's path, sorted;
// none means the path does not exist.
func allowedMethods(mux *http.ServeMux, r *http.Request) []string {
	var allow []string
	for _, m := range routeMethods {
		probe := &http.Request{Method: m, URL: r.URL, Host: r.Host, Header: http.Header{}}
		if _, pattern := mux.Handler(probe); pattern != "" {
			allow = append(allow, m)
		}
	}
	return allow
}

// operation fills in what every operation shares: the body limit, the
// security requirement and the error responses that the middleware can
// produce on top of the operation's own.
func operation(op huma.Operation, security string, errs ...int) huma.Operation {
	op.MaxBodyBytes = BodyBytesMax + 1 // Huma refuses a body that reaches the limit
	switch security {
	case schemeSecretKey:
		op.Security = []map[string][]string{{schemeSecretKey: {}}}
		errs = append(errs, http.StatusUnauthorized, http.StatusForbidden, http.StatusTooManyRequests)
	case schemeAdminToken:
		op.Security = []map[string][]string{{schemeAdminToken: {}}}
		// 429: an address past its budget of failed authentications.
		errs = append(errs, http.StatusUnauthorized, http.StatusTooManyRequests)
	default:
		// Public: an explicit empty requirement ("security": []) says so
		// to linters and generators, rather than leaving it unsaid.
		op.Security = []map[string][]string{}
	}
	// 400 for anything the client sent wrong, in the path, the query, the
	// headers or the body; 405 for a method the path does not have.
	errs = append(errs, http.StatusBadRequest, http.StatusMethodNotAllowed)
	if op.Method == http.MethodPost || op.Method == http.MethodPut || op.Method == http.MethodPatch {
		errs = append(errs, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType)
	}
	errs = append(errs, http.StatusInternalServerError, http.StatusServiceUnavailable)
	seen := map[int]bool{}
	for _, e := range errs {
		if !seen[e] {
			seen[e] = true
			op.Errors = append(op.Errors, e)
		}
	}
	return op
}

// handle adapts a use-case function to Huma: domain errors become problems.
func handle[I, O any](h func(context.Context, *I) (*O, error)) func(context.Context, *I) (*O, error) {
	return func(ctx context.Context, in *I) (*O, error) {
		out, err := h(ctx, in)
		var replay *idempotency.Replay
		if errors.As(err, &replay) {
			return nil, &replayed{stored: replay.Stored}
		}
		if err != nil {
			return nil, problemFrom(ctx, err)
		}
		return out, nil
	}
}

func requires(op *huma.Operation, scheme string) bool {
	for _, req := range op.Security {
		if _, ok := req[scheme]; ok {
			return true
		}
	}
	return false
}

func bearer(ctx huma.Context) string {
	h := ctx.Header("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// authenticate is the Huma middleware that authorizes every operation by its
// declared security scheme and spends the tenant's rate limit.
func (s *Server) authenticate(ctx huma.Context, next func(huma.Context)) {
	op := ctx.Operation()
	rctx := ctx.Context()
	noteOperation(rctx, op.OperationID, "")
	switch {
	case requires(op, schemeAdminToken):
		tok := bearer(ctx)
		addr := clientAddress(ctx)
		if s.cfg.Tenancy != nil {
			if wait, limited := s.cfg.Tenancy.AddressLimited(addr); limited {
				s.fail(ctx, addressLimited(rctx, wait))
				return
			}
		}
		if s.cfg.AdminToken == "" || subtle.ConstantTimeCompare([]byte(tok), []byte(s.cfg.AdminToken)) != 1 {
			if s.cfg.Tenancy != nil {
				s.cfg.Tenancy.NoteFailedAuth(addr)
			}
			s.fail(ctx, newProblem(rctx, http.StatusUnauthorized, errcode.CodeUnauthenticated, "invalid admin token: send 'Authorization: Bearer <PAYMENTS_ADMIN_TOKEN>'"))
			return
		}
		if isWrite(op.Method) {
			if ctx = s.guardWrite(ctx, adminScope); ctx == nil {
				return
			}
		}
		next(ctx)
	case requires(op, schemeSecretKey):
		p, err := s.cfg.Tenancy.AuthenticateFrom(rctx, bearer(ctx), clientAddress(ctx))
		if errors.Is(err, tenancy.ErrAddressLimited) {
			wait, _ := s.cfg.Tenancy.AddressLimited(clientAddress(ctx))
			s.fail(ctx, addressLimited(rctx, wait))
			return
		}
		if err != nil {
			s.fail(ctx, problemFrom(rctx, err))
			return
		}
		noteOperation(rctx, "", ids.Format(ids.PrefixTenant, p.TenantID))
		// The rate limit comes first, so that every answer to an
		// authenticated tenant carries the RateLimit-* headers. A payment
		// creation with risk rules spends it once its body is read, in the
		// same round trip as its rules (unless it is refused first).
		readOnlyRefused := p.ReadOnly && op.Method != http.MethodGet && op.Method != http.MethodHead
		withRules := s.cfg.RateLimiter != nil && s.cfg.Risk != nil && op.OperationID == opCreatePayment && !readOnlyRefused
		if s.cfg.RateLimiter != nil && !withRules {
			if !s.spend(ctx, p, s.cfg.RateLimiter.Allow(rctx, p)) {
				return
			}
		}
		if readOnlyRefused {
			s.fail(ctx, newProblem(rctx, http.StatusForbidden, errcode.CodeReadOnlyKey, "this API key is read-only; use a secret key with write access"))
			return
		}
		if isWrite(op.Method) {
			if ctx = s.guardWrite(ctx, p.TenantID); ctx == nil {
				return
			}
		}
		if withRules {
			var ok bool
			if ctx, ok = s.spendWithRules(ctx, p); !ok {
				return
			}
		}
		next(huma.WithValue(ctx, principalKey, p))
	default:
		next(ctx)
	}
}

// spend sets the rate-limit headers of d and answers 429 when it refuses;
// it reports whether the request goes on.
func (s *Server) spend(ctx huma.Context, p tenancy.Principal, d tenancy.Decision) bool {
	ctx.SetHeader("RateLimit-Limit", strconv.Itoa(d.Limit))
	ctx.SetHeader("RateLimit-Remaining", strconv.Itoa(max(d.Remaining, 0)))
	ctx.SetHeader("RateLimit-Reset", strconv.Itoa(ceilSeconds(d.ResetAfter)))
	if !d.Allowed {
		prob := newProblem(ctx.Context(), http.StatusTooManyRequests, errcode.CodeRateLimited,
			fmt.Sprintf("too many requests: the limit is %d per second; retry after the Retry-After delay", p.RateLimitPerSecond))
		prob.headers = http.Header{"Retry-After": []string{strconv.Itoa(max(ceilSeconds(d.RetryAfter), 1))}}
		s.fail(ctx, prob)
		return false
	}
	return true
}

// clientAddress is the peer's IP address. X-Forwarded-For is not read: a
// client could set it to spread its failures over made-up addresses.
func clientAddress(ctx huma.Context) string {
	addr := ctx.RemoteAddr()
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}

func addressLimited(ctx context.Context, wait time.Duration) *Problem {
	p := newProblem(ctx, http.StatusTooManyRequests, errcode.CodeRateLimited,
		"too many requests without a valid key from this address; retry after the Retry-After delay")
	p.headers = http.Header{"Retry-After": []string{strconv.Itoa(max(ceilSeconds(wait), 1))}}
	return p
}

func ceilSeconds(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return int((d + time.Second - 1) / time.Second)
}

func (s *Server) fail(ctx huma.Context, p *Problem) {
	for k, vs := range p.headers {
		for _, v := range vs {
			ctx.AppendHeader(k, v)
		}
	}
	ctx.SetHeader("Content-Type", "application/problem+json")
	ctx.SetStatus(p.Status)
	_ = jsonEncode(ctx.BodyWriter(), p)
}

// principal returns the authenticated caller; operations that declare the
// secret-key scheme always have one.
func principal(ctx context.Context) tenancy.Principal {
	p, _ := ctx.Value(principalKey).(tenancy.Principal)
	return p
}

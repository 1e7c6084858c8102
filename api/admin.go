package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/payments-api/payments/errcode"
	"github.com/payments-api/payments/idempotency"
	"github.com/payments-api/payments/ids"
	"github.com/payments-api/payments/tenancy"
)

// APIKey is a secret key as the API shows it. Secret is present only in the
// answer that created the key.
type APIKey struct {
	ID       string `json:"id" doc:"Unique identifier, prefixed key_." example:"key_06f0kb9t5q3e3bq4b7bw0vq2rc"`
	Object   string `json:"object" enum:"api_key" doc:"Always api_key."`
	Secret   string `json:"secret,omitempty" doc:"The secret key. Shown only once, when the key is created." example:"sk_test_4eC39HqLyjWDarjtT1zdp7dc4eC39HqLyjWDarj"`
	Display  string `json:"display" doc:"The key's prefix and last four characters, to recognize it." example:"sk_test_...7dc4"`
	Mode     string `json:"mode" enum:"test,live" doc:"test or live." example:"test"`
	ReadOnly bool   `json:"read_only" doc:"A read-only key may only call GET operations."`
	Tenant   string `json:"tenant" doc:"The account the key belongs to." example:"ten_06f0kb9t5q3e3bq4b7bw0vq2rc"`
	Created  int64  `json:"created" doc:"Creation time, Unix seconds." example:"1764090000"`
	Revoked  *int64 `json:"revoked,omitempty" doc:"Revocation time, Unix seconds; a revoked key answers 401."`
}

// APIKeyOf renders a key; secret is empty except at creation.
func APIKeyOf(k tenancy.APIKey, secret string) APIKey {
	out := APIKey{
		ID: k.PublicID(), Object: "api_key", Secret: secret, Display: k.Display, Mode: string(k.Mode),
		ReadOnly: k.ReadOnly, Tenant: ids.Format(ids.PrefixTenant, k.TenantID), Created: k.CreatedAt.Unix(),
	}
	if k.RevokedAt != nil {
		r := k.RevokedAt.Unix()
		out.Revoked = &r
	}
	return out
}

// TenantCreated is the answer to creating a tenant: the account and its
// first secret key. The CLI prints the same JSON.
type TenantCreated struct {
	Account Account `json:"account"`
	APIKey  APIKey  `json:"api_key"`
}

// NewTenantCreated renders the answer to creating a tenant.
func NewTenantCreated(t tenancy.Tenant, secret string, k tenancy.APIKey) TenantCreated {
	return TenantCreated{Account: accountOf(t), APIKey: APIKeyOf(k, secret)}
}

type createTenantInput struct {
	IdempotencyHeader
	Body struct {
		Name               string `json:"name" minLength:"1" maxLength:"200" doc:"The merchant's name." example:"Acme Books"`
		Region             string `json:"region" minLength:"1" maxLength:"63" doc:"The home region; it must have at least one shard." example:"local"`
		RateLimitPerSecond int    `json:"rate_limit_per_second,omitempty" minimum:"1" maximum:"1000000" doc:"Sustained requests per second; the server default when absent."`
		RateLimitBurst     int    `json:"rate_limit_burst,omitempty" minimum:"1" maximum:"1000000" doc:"Burst size; the server default when absent."`
		KeyMode            string `json:"key_mode,omitempty" enum:"test,live" doc:"Mode of the first key; test when absent."`
	}
}

type tenantCreatedOutput struct {
	Body TenantCreated
}

type listInput struct {
	Limit         int    `query:"limit" minimum:"1" maximum:"100" default:"10" doc:"How many objects to answer, 1 to 100."`
	StartingAfter string `query:"starting_after" maxLength:"64" doc:"A cursor: the ID of the last object of the previous page."`
}

type accountList struct {
	Object  string    `json:"object" enum:"list"`
	Data    []Account `json:"data"`
	HasMore bool      `json:"has_more" doc:"Whether another page follows."`
}

type accountListOutput struct {
	Body accountList
}

type tenantPath struct {
	Tenant string `path:"tenant" maxLength:"64" doc:"The tenant's ID." example:"ten_06f0kb9t5q3e3bq4b7bw0vq2rc"`
}

type updateTenantInput struct {
	IdempotencyHeader
	Tenant string `path:"tenant" maxLength:"64" doc:"The tenant's ID." example:"ten_06f0kb9t5q3e3bq4b7bw0vq2rc"`
	Body   struct {
		Status             string `json:"status,omitempty" enum:"active,disabled" doc:"Disable to make every key of the account answer 403." example:"disabled"`
		RateLimitPerSecond int    `json:"rate_limit_per_second,omitempty" minimum:"1" maximum:"1000000" doc:"Sustained requests per second." example:"500"`
		RateLimitBurst     int    `json:"rate_limit_burst,omitempty" minimum:"1" maximum:"1000000" doc:"Burst size." example:"1000"`
	}
}

type createKeyInput struct {
	IdempotencyHeader
	Tenant string `path:"tenant" maxLength:"64" doc:"The tenant's ID." example:"ten_06f0kb9t5q3e3bq4b7bw0vq2rc"`
	Body   struct {
		Mode     string `json:"mode,omitempty" enum:"test,live" doc:"test when absent." example:"test"`
		ReadOnly bool   `json:"read_only,omitempty" doc:"A read-only key may only call GET operations." example:"true"`
	}
}

type keyOutput struct {
	Body APIKey
}

type keyList struct {
	Object  string   `json:"object" enum:"list"`
	Data    []APIKey `json:"data"`
	HasMore bool     `json:"has_more"`
}

type keyListOutput struct {
	Body keyList
}

type keyPath struct {
	Tenant string `path:"tenant" maxLength:"64" doc:"The tenant's ID." example:"ten_06f0kb9t5q3e3bq4b7bw0vq2rc"`
	Key    string `path:"key" maxLength:"64" doc:"The key's ID." example:"key_06f0kb9t5q3e3bq4b7bw0vq2rc"`
}

type revokeKeyInput struct {
	IdempotencyHeader
	Tenant string `path:"tenant" maxLength:"64" doc:"The tenant's ID." example:"ten_06f0kb9t5q3e3bq4b7bw0vq2rc"`
	Key    string `path:"key" maxLength:"64" doc:"The key's ID." example:"key_06f0kb9t5q3e3bq4b7bw0vq2rc"`
}

// objectID reads an object's ID from a request; anything else answers 404
// resource_missing, like an ID that exists elsewhere.
func objectID(prefix, what, s string) (uuid.UUID, error) {
	id, ok := ids.Parse(prefix, s)
	if !ok {
		return id, errcode.NotFound(what, s)
	}
	return id, nil
}

func parseTenant(s string) (uuid.UUID, error) { return objectID(ids.PrefixTenant, "tenant", s) }

func registerAdmin(api huma.API, s *Server) {
	tags := []string{"Admin"}
	huma.Register(api, operation(huma.Operation{
		OperationID:   "admin-create-tenant",
		Method:        http.MethodPost,
		Path:          "/v1/admin/tenants",
		Summary:       "Create a tenant",
		Description:   "Places a new tenant on a shard of its home region and answers the account with its first secret key. The secret is shown only in this answer.",
		Tags:          tags,
		DefaultStatus: http.StatusCreated,
	}, schemeAdminToken, http.StatusBadRequest), handle(adminWrite(s, http.StatusCreated, func(ctx context.Context, in *createTenantInput) (*tenantCreatedOutput, error) {
		params := tenancy.CreateTenantParams{
			Name: in.Body.Name, Region: in.Body.Region, RateLimitPerSecond: in.Body.RateLimitPerSecond,
			RateLimitBurst: in.Body.RateLimitBurst, KeyMode: tenancy.Mode(in.Body.KeyMode),
		}
		if r := idempotency.From(ctx); r != nil {
			// The answer is stored in the transaction that makes the
			// tenant reachable: a crash never leaves a tenant that a
			// retry would create again.
			params.Finish = func(ctx context.Context, tx pgx.Tx, t tenancy.Tenant, secret string, k tenancy.APIKey) error {
				return r.Complete(ctx, tx, &tenantCreatedOutput{Body: NewTenantCreated(t, secret, k)}, nil)
			}
		}
		t, secret, k, err := s.cfg.Tenancy.CreateTenant(ctx, params)
		if err != nil {
			return nil, err
		}
		return &tenantCreatedOutput{Body: NewTenantCreated(t, secret, k)}, nil
	})))

	huma.Register(api, operation(huma.Operation{
		OperationID: "admin-list-tenants",
		Method:      http.MethodGet,
		Path:        "/v1/admin/tenants",
		Summary:     "List tenants",
		Description: "Lists tenants of every shard, newest first, with cursor pagination.",
		Tags:        tags,
	}, schemeAdminToken, http.StatusBadRequest), handle(func(ctx context.Context, in *listInput) (*accountListOutput, error) {
		var after *uuid.UUID
		if in.StartingAfter != "" {
			id, ok := ids.Parse(ids.PrefixTenant, in.StartingAfter)
			if !ok {
				return nil, errcode.Invalid(errcode.CodeParameterInvalid, "starting_after", "starting_after must be a tenant ID")
			}
			after = &id
		}
		ts, more, err := s.cfg.Tenancy.ListTenants(ctx, in.Limit, after)
		if err != nil {
			return nil, err
		}
		out := &accountListOutput{Body: accountList{Object: "list", Data: []Account{}, HasMore: more}}
		for _, t := range ts {
			out.Body.Data = append(out.Body.Data, accountOf(t))
		}
		return out, nil
	}))

	huma.Register(api, operation(huma.Operation{
		OperationID: "admin-get-tenant",
		Method:      http.MethodGet,
		Path:        "/v1/admin/tenants/{tenant}",
		Summary:     "Retrieve a tenant",
		Description: "Answers one tenant's account.",
		Tags:        tags,
	}, schemeAdminToken, http.StatusNotFound), handle(func(ctx context.Context, in *tenantPath) (*accountOutput, error) {
		id, err := parseTenant(in.Tenant)
		if err != nil {
			return nil, err
		}
		t, err := s.cfg.Tenancy.GetTenant(ctx, id)
		if err != nil {
			return nil, err
		}
		return &accountOutput{Body: accountOf(t)}, nil
	}))

	huma.Register(api, operation(huma.Operation{
		OperationID: "admin-update-tenant",
		Method:      http.MethodPost,
		Path:        "/v1/admin/tenants/{tenant}",
		Summary:     "Update a tenant",
		Description: "Changes a tenant's status or rate limits. Disabling takes effect within five seconds.",
		Tags:        tags,
	}, schemeAdminToken, http.StatusNotFound), handle(adminWrite(s, http.StatusOK, func(ctx context.Context, in *updateTenantInput) (*accountOutput, error) {
		id, err := parseTenant(in.Tenant)
		if err != nil {
			return nil, err
		}
		var p tenancy.UpdateTenantParams
		if in.Body.Status != "" {
			st := tenancy.Status(in.Body.Status)
			p.Status = &st
		}
		if in.Body.RateLimitPerSecond != 0 {
			p.RateLimitPerSecond = &in.Body.RateLimitPerSecond
		}
		if in.Body.RateLimitBurst != 0 {
			p.RateLimitBurst = &in.Body.RateLimitBurst
		}
		t, err := s.cfg.Tenancy.UpdateTenant(ctx, id, p)
		if err != nil {
			return nil, err
		}
		return &accountOutput{Body: accountOf(t)}, nil
	})))

	huma.Register(api, operation(huma.Operation{
		OperationID:   "admin-create-key",
		Method:        http.MethodPost,
		Path:          "/v1/admin/tenants/{tenant}/keys",
		Summary:       "Create an API key",
		Description:   "Issues another secret key for a tenant, optionally read-only. The secret is shown only in this answer.",
		Tags:          tags,
		DefaultStatus: http.StatusCreated,
	}, schemeAdminToken, http.StatusNotFound), handle(adminWrite(s, http.StatusCreated, func(ctx context.Context, in *createKeyInput) (*keyOutput, error) {
		id, err := parseTenant(in.Tenant)
		if err != nil {
			return nil, err
		}
		var finish func(context.Context, pgx.Tx, string, tenancy.APIKey) error
		if r := idempotency.From(ctx); r != nil {
			finish = func(ctx context.Context, tx pgx.Tx, secret string, k tenancy.APIKey) error {
				return r.Complete(ctx, tx, &keyOutput{Body: APIKeyOf(k, secret)}, nil)
			}
		}
		secret, k, err := s.cfg.Tenancy.CreateKeyThen(ctx, id, tenancy.Mode(in.Body.Mode), in.Body.ReadOnly, finish)
		if err != nil {
			return nil, err
		}
		return &keyOutput{Body: APIKeyOf(k, secret)}, nil
	})))

	huma.Register(api, operation(huma.Operation{
		OperationID: "admin-list-keys",
		Method:      http.MethodGet,
		Path:        "/v1/admin/tenants/{tenant}/keys",
		Summary:     "List API keys",
		Description: "Lists a tenant's keys, newest first, without their secrets.",
		Tags:        tags,
	}, schemeAdminToken, http.StatusNotFound), handle(func(ctx context.Context, in *tenantPath) (*keyListOutput, error) {
		id, err := parseTenant(in.Tenant)
		if err != nil {
			return nil, err
		}
		ks, err := s.cfg.Tenancy.ListKeys(ctx, id)
		if err != nil {
			return nil, err
		}
		out := &keyListOutput{Body: keyList{Object: "list", Data: []APIKey{}}}
		for _, k := range ks {
			out.Body.Data = append(out.Body.Data, APIKeyOf(k, ""))
		}
		return out, nil
	}))

	huma.Register(api, operation(huma.Operation{
		OperationID: "admin-revoke-key",
		Method:      http.MethodPost,
		Path:        "/v1/admin/tenants/{tenant}/keys/{key}/revoke",
		Summary:     "Revoke an API key",
		Description: "Revokes a key. It stops authenticating within five seconds. Revoking a revoked key changes nothing.",
		Tags:        tags,
	}, schemeAdminToken, http.StatusNotFound), handle(adminWrite(s, http.StatusOK, func(ctx context.Context, in *revokeKeyInput) (*keyOutput, error) {
		tid, err := parseTenant(in.Tenant)
		if err != nil {
			return nil, err
		}
		kid, err := objectID(ids.PrefixAPIKey, "api key", in.Key)
		if err != nil {
			return nil, err
		}
		k, err := s.cfg.Tenancy.RevokeKey(ctx, tid, kid)
		if err != nil {
			return nil, err
		}
		return &keyOutput{Body: APIKeyOf(k, "")}, nil
	})))
}

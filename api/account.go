package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/payments-api/payments/tenancy"
)

// Account is a tenant as the API shows it.
type Account struct {
	ID                 string `json:"id" doc:"Unique identifier, prefixed ten_." example:"ten_06f0kb9t5q3e3bq4b7bw0vq2rc"`
	Object             string `json:"object" enum:"account" doc:"Always account."`
	Name               string `json:"name" doc:"The merchant's name." example:"Acme Books"`
	Region             string `json:"region" doc:"The home region: where the account's data is stored." example:"local"`
	Status             string `json:"status" enum:"active,disabled" doc:"A disabled account's keys answer 403." example:"active"`
	RateLimitPerSecond int    `json:"rate_limit_per_second" doc:"Sustained requests per second allowed for this account." example:"100"`
	RateLimitBurst     int    `json:"rate_limit_burst" doc:"Requests allowed in a burst above the sustained rate." example:"200"`
	Created            int64  `json:"created" doc:"Creation time, Unix seconds." example:"1764090000"`
}

func accountOf(t tenancy.Tenant) Account {
	return Account{
		ID: t.PublicID(), Object: "account", Name: t.Name, Region: t.Region, Status: string(t.Status),
		RateLimitPerSecond: t.RateLimitPerSecond, RateLimitBurst: t.RateLimitBurst, Created: t.CreatedAt.Unix(),
	}
}

type accountOutput struct {
	Body Account
}

func registerAccount(api huma.API, s *Server) {
	huma.Register(api, operation(huma.Operation{
		OperationID: "get-account",
		Method:      http.MethodGet,
		Path:        "/v1/account",
		Summary:     "Retrieve your account",
		Description: "Answers the account that owns the API key of the request.",
		Tags:        []string{"Account"},
	}, schemeSecretKey), handle(func(ctx context.Context, _ *struct{}) (*accountOutput, error) {
		t, err := s.cfg.Tenancy.GetTenant(ctx, principal(ctx).TenantID)
		if err != nil {
			return nil, err
		}
		return &accountOutput{Body: accountOf(t)}, nil
	}))
}

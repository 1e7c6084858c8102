package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
	"github.com/google/uuid"

	"github.com/payments-api/payments/errcode"
	"github.com/payments-api/payments/ids"
	"github.com/payments-api/payments/webhooks"
)

type createEndpointInput struct {
	IdempotencyHeader
	Body struct {
		URL           string   `json:"url" minLength:"1" maxLength:"2048" doc:"Where to send events: an https URL on the public internet. Private, loopback and link-local addresses are refused." example:"https://example.com/webhooks"`
		EnabledEvents []string `json:"enabled_events" minItems:"1" maxItems:"64" doc:"The event types to send, or [\"*\"] for all, including types added later." example:"[\"payment.succeeded\",\"refund.succeeded\"]"`
		Description   *string  `json:"description,omitempty" maxLength:"1000" doc:"Your description of the endpoint." example:"Order fulfilment"`
	}
}

type updateEndpointInput struct {
	IdempotencyHeader
	EndpointPath
	Body struct {
		URL           *string  `json:"url,omitempty" minLength:"1" maxLength:"2048" doc:"A new URL, checked like at creation." example:"https://example.com/webhooks/v2"`
		EnabledEvents []string `json:"enabled_events,omitempty" minItems:"1" maxItems:"64" doc:"A new list of event types, or [\"*\"]." example:"[\"*\"]"`
		Description   *string  `json:"description,omitempty" maxLength:"1000" doc:"A new description." example:"Order fulfilment"`
		Disabled      *bool    `json:"disabled,omitempty" doc:"true stops deliveries (pending ones end as failed); false enables the endpoint again and clears its failure record." example:"false"`
	}
}

type endpointIDInput struct {
	IdempotencyHeader
	EndpointPath
}

// EndpointPath names a webhook endpoint in the path.
type EndpointPath struct {
	ID string `path:"id" maxLength:"64" doc:"The endpoint's ID." example:"we_06h17frpsdzff29kp8gyg5mc4w"`
}

type endpointOutput struct {
	Body webhooks.EndpointView
}

type deletedEndpointOutput struct {
	Body webhooks.DeletedView
}

type endpointList struct {
	Object  string                  `json:"object" enum:"list"`
	Data    []webhooks.EndpointView `json:"data"`
	HasMore bool                    `json:"has_more" doc:"Whether more objects follow in the direction of travel."`
}

type endpointListOutput struct {
	Body endpointList
}

type listDeliveriesInput struct {
	EndpointPath
	ListQuery
}

type deliveryList struct {
	Object  string                  `json:"object" enum:"list"`
	Data    []webhooks.DeliveryView `json:"data"`
	HasMore bool                    `json:"has_more" doc:"Whether more objects follow in the direction of travel."`
}

type deliveryListOutput struct {
	Body deliveryList
}

type redeliverInput struct {
	IdempotencyHeader
	ID   string `path:"id" maxLength:"64" doc:"The event's ID." example:"evt_06h17frpsdzff29kp8gyg5mc4w"`
	Body *struct {
		Endpoint string `json:"endpoint,omitempty" maxLength:"64" doc:"Send to this endpoint only; by default to every enabled endpoint subscribed to the event's type." example:"we_06h17frpsdzff29kp8gyg5mc4w"`
	}
}

func endpointID(s string) (uuid.UUID, error) {
	return objectID(ids.PrefixWebhook, "webhook endpoint", s)
}

func endpointView(v any) any           { return v.(webhooks.Endpoint).ToView() }
func endpointViewWithSecret(v any) any { return v.(webhooks.Endpoint).ToViewWithSecret() }
func deletedView(v any) any {
	return webhooks.DeletedView{ID: v.(webhooks.Endpoint).PublicID(), Object: "webhook_endpoint", Deleted: true}
}

func deliveriesView(v any) any {
	out := deliveryList{Object: "list", Data: []webhooks.DeliveryView{}}
	for _, d := range v.([]webhooks.Delivery) {
		out.Data = append(out.Data, d.ToView())
	}
	return out
}

func registerWebhookEndpoints(api huma.API, s *Server) {
	tags := []string{"Webhook endpoints"}
	huma.Register(api, operation(huma.Operation{
		OperationID: "create-webhook-endpoint",
		Method:      http.MethodPost,
		Path:        "/v1/webhook_endpoints",
		Summary:     "Create a webhook endpoint",
		Description: "Registers a URL that receives the events you choose. The answer holds the signing secret (whsec_...), shown only now and after a rotation: " +
			"every delivery carries Payments-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of \"<t>.<raw body>\" under the secret>. " +
			"Only events that happen after the endpoint exists are sent to it. The URL must be https and must not point to a private, loopback or link-local address. " +
			"An account may have 16 endpoints.",
		Tags:          tags,
		DefaultStatus: http.StatusCreated,
	}, schemeSecretKey, http.StatusConflict), handle(func(ctx context.Context, in *createEndpointInput) (*endpointOutput, error) {
		storeAs(ctx, http.StatusCreated, endpointViewWithSecret)
		b := in.Body
		e, err := s.cfg.Webhooks.CreateEndpoint(ctx, principal(ctx).TenantID, webhooks.CreateParams{
			URL: b.URL, EnabledEvents: b.EnabledEvents, Description: b.Description,
		})
		if err != nil {
			return nil, err
		}
		return &endpointOutput{Body: e.ToViewWithSecret()}, nil
	}))

	huma.Register(api, operation(huma.Operation{
		OperationID: "get-webhook-endpoint",
		Method:      http.MethodGet,
		Path:        "/v1/webhook_endpoints/{id}",
		Summary:     "Retrieve a webhook endpoint",
		Description: "Answers an endpoint without its secret. Another account's endpoint, or a deleted one, answers 404.",
		Tags:        tags,
	}, schemeSecretKey, http.StatusNotFound), handle(func(ctx context.Context, in *EndpointPath) (*endpointOutput, error) {
		id, err := endpointID(in.ID)
		if err != nil {
			return nil, err
		}
		e, err := s.cfg.Webhooks.GetEndpoint(ctx, principal(ctx).TenantID, id)
		if err != nil {
			return nil, err
		}
		return &endpointOutput{Body: e.ToView()}, nil
	}))

	huma.Register(api, operation(huma.Operation{
		OperationID: "list-webhook-endpoints",
		Method:      http.MethodGet,
		Path:        "/v1/webhook_endpoints",
		Summary:     "List webhook endpoints",
		Description: "Lists the account's endpoints newest first, without their secrets, with cursor pagination.",
		Tags:        tags,
	}, schemeSecretKey, http.StatusBadRequest), handle(func(ctx context.Context, in *ListQuery) (*endpointListOutput, error) {
		page, err := in.page(ids.PrefixWebhook)
		if err != nil {
			return nil, err
		}
		es, more, err := s.cfg.Webhooks.ListEndpoints(ctx, principal(ctx).TenantID, page)
		if err != nil {
			return nil, err
		}
		out := &endpointListOutput{Body: endpointList{Object: "list", Data: []webhooks.EndpointView{}, HasMore: more}}
		for _, e := range es {
			out.Body.Data = append(out.Body.Data, e.ToView())
		}
		return out, nil
	}))

	huma.Register(api, operation(huma.Operation{
		OperationID: "update-webhook-endpoint",
		Method:      http.MethodPost,
		Path:        "/v1/webhook_endpoints/{id}",
		Summary:     "Update a webhook endpoint",
		Description: "Changes the URL, the event types, the description, or disables (disabled: true) or enables the endpoint. Fields left out stay as they are.",
		Tags:        tags,
	}, schemeSecretKey, http.StatusNotFound, http.StatusConflict), handle(func(ctx context.Context, in *updateEndpointInput) (*endpointOutput, error) {
		storeAs(ctx, http.StatusOK, endpointView)
		id, err := endpointID(in.ID)
		if err != nil {
			return nil, err
		}
		b := in.Body
		e, err := s.cfg.Webhooks.UpdateEndpoint(ctx, principal(ctx).TenantID, id, webhooks.UpdateParams{
			URL: b.URL, EnabledEvents: b.EnabledEvents, Description: b.Description, Disabled: b.Disabled,
		})
		if err != nil {
			return nil, err
		}
		return &endpointOutput{Body: e.ToView()}, nil
	}))

	huma.Register(api, operation(huma.Operation{
		OperationID: "delete-webhook-endpoint",
		Method:      http.MethodDelete,
		Path:        "/v1/webhook_endpoints/{id}",
		Summary:     "Delete a webhook endpoint",
		Description: "Deletes an endpoint: it gets no more deliveries (pending ones end as failed) and answers 404 from now on.",
		Tags:        tags,
	}, schemeSecretKey, http.StatusNotFound, http.StatusConflict), handle(func(ctx context.Context, in *endpointIDInput) (*deletedEndpointOutput, error) {
		storeAs(ctx, http.StatusOK, deletedView)
		id, err := endpointID(in.ID)
		if err != nil {
			return nil, err
		}
		e, err := s.cfg.Webhooks.DeleteEndpoint(ctx, principal(ctx).TenantID, id)
		if err != nil {
			return nil, err
		}
		return &deletedEndpointOutput{Body: deletedView(e).(webhooks.DeletedView)}, nil
	}))

	huma.Register(api, operation(huma.Operation{
		OperationID: "rotate-webhook-endpoint-secret",
		Method:      http.MethodPost,
		Path:        "/v1/webhook_endpoints/{id}/rotate_secret",
		Summary:     "Rotate a webhook endpoint's secret",
		Description: "Answers the endpoint with a new signing secret. For the next 24 hours every delivery carries two v1 signatures, one under the new secret and one under the old, " +
			"so your receiver can switch without rejecting a delivery. Rotating again within 24 hours retires the older secret at once.",
		Tags: tags,
	}, schemeSecretKey, http.StatusNotFound, http.StatusConflict), handle(func(ctx context.Context, in *endpointIDInput) (*endpointOutput, error) {
		storeAs(ctx, http.StatusOK, endpointViewWithSecret)
		id, err := endpointID(in.ID)
		if err != nil {
			return nil, err
		}
		e, err := s.cfg.Webhooks.RotateSecret(ctx, principal(ctx).TenantID, id)
		if err != nil {
			return nil, err
		}
		return &endpointOutput{Body: e.ToViewWithSecret()}, nil
	}))

	huma.Register(api, operation(huma.Operation{
		OperationID: "list-webhook-deliveries",
		Method:      http.MethodGet,
		Path:        "/v1/webhook_endpoints/{id}/deliveries",
		Summary:     "List an endpoint's deliveries",
		Description: "Lists the endpoint's deliveries newest first, each with its status and its newest attempts: time, HTTP status, latency, error and the start of the answer's body (at most 64 KiB).",
		Tags:        tags,
	}, schemeSecretKey, http.StatusBadRequest, http.StatusNotFound), handle(func(ctx context.Context, in *listDeliveriesInput) (*deliveryListOutput, error) {
		id, err := endpointID(in.ID)
		if err != nil {
			return nil, err
		}
		page, err := in.page(ids.PrefixDelivery)
		if err != nil {
			return nil, err
		}
		ds, more, err := s.cfg.Webhooks.ListDeliveries(ctx, principal(ctx).TenantID, id, page)
		if err != nil {
			return nil, err
		}
		out := &deliveryListOutput{Body: deliveriesView(ds).(deliveryList)}
		out.Body.HasMore = more
		return out, nil
	}))

	huma.Register(api, operation(huma.Operation{
		OperationID: "redeliver-event",
		Method:      http.MethodPost,
		Path:        "/v1/events/{id}/redeliver",
		Summary:     "Send an event again",
		Description: "Schedules the event for immediate delivery again, to one endpoint or to every enabled endpoint subscribed to its type, with a fresh retry schedule. " +
			"Answers the scheduled deliveries; a disabled endpoint answers 409 webhook_endpoint_disabled.",
		Tags:          []string{"Events"},
		DefaultStatus: http.StatusAccepted,
	}, schemeSecretKey, http.StatusNotFound, http.StatusConflict), handle(func(ctx context.Context, in *redeliverInput) (*deliveryListOutput, error) {
		storeAs(ctx, http.StatusAccepted, deliveriesView)
		evID, err := objectID(ids.PrefixEvent, "event", in.ID)
		if err != nil {
			return nil, err
		}
		var target *uuid.UUID
		if in.Body != nil && in.Body.Endpoint != "" {
			id, err := endpointID(in.Body.Endpoint)
			if err != nil {
				e := errcode.As(err)
				e.Param = "endpoint"
				return nil, e
			}
			target = &id
		}
		ds, err := s.cfg.Webhooks.Redeliver(ctx, principal(ctx).TenantID, evID, target)
		if err != nil {
			return nil, err
		}
		return &deliveryListOutput{Body: deliveriesView(ds).(deliveryList)}, nil
	}))
}

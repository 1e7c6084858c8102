package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/payments-api/payments/errcode"
	"github.com/payments-api/payments/events"
	"github.com/payments-api/payments/ids"
)

type eventOutput struct {
	Body events.EventView
}

type eventPath struct {
	ID string `path:"id" maxLength:"64" doc:"The event's ID." example:"evt_06h17frpsdzff29kp8gyg5mc4w"`
}

type listEventsInput struct {
	ListQuery
	Type string `query:"type" maxLength:"100" doc:"Only events of this type, such as payment.succeeded."`
}

type eventList struct {
	Object  string             `json:"object" enum:"list"`
	Data    []events.EventView `json:"data"`
	HasMore bool               `json:"has_more"`
}

type eventListOutput struct {
	Body eventList
}

func registerEvents(api huma.API, s *Server) {
	tags := []string{"Events"}
	huma.Register(api, operation(huma.Operation{
		OperationID: "get-event",
		Method:      http.MethodGet,
		Path:        "/v1/events/{id}",
		Summary:     "Retrieve an event",
		Description: "Answers an event with the snapshot of its object.",
		Tags:        tags,
	}, schemeSecretKey, http.StatusNotFound), handle(func(ctx context.Context, in *eventPath) (*eventOutput, error) {
		id, err := objectID(ids.PrefixEvent, "event", in.ID)
		if err != nil {
			return nil, err
		}
		p := principal(ctx)
		e, err := events.Get(ctx, p.Shard.Pool, p.TenantID, id)
		if err != nil {
			return nil, err
		}
		return &eventOutput{Body: e.View()}, nil
	}))

	huma.Register(api, operation(huma.Operation{
		OperationID: "list-events",
		Method:      http.MethodGet,
		Path:        "/v1/events",
		Summary:     "List events",
		Description: "Lists events newest first, optionally of one type. Events are written in the same transaction as the change they describe.",
		Tags:        tags,
	}, schemeSecretKey, http.StatusBadRequest), handle(func(ctx context.Context, in *listEventsInput) (*eventListOutput, error) {
		page, err := in.page(ids.PrefixEvent)
		if err != nil {
			return nil, err
		}
		if in.Type != "" {
			if !events.Known(events.Type(in.Type)) {
				return nil, errcode.Invalid(errcode.CodeParameterInvalid, "type", "unknown event type %q", in.Type)
			}
		}
		p := principal(ctx)
		es, more, err := events.List(ctx, p.Shard.Pool, p.TenantID, events.ListParams{Page: page, Type: events.Type(in.Type)})
		if err != nil {
			return nil, err
		}
		out := &eventListOutput{Body: eventList{Object: "list", Data: []events.EventView{}, HasMore: more}}
		for _, e := range es {
			out.Body.Data = append(out.Body.Data, e.View())
		}
		return out, nil
	}))
}

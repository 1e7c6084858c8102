package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
)

type healthBody struct {
	Status string            `json:"status" doc:"ok when every check passed, otherwise unavailable." example:"ok"`
	Checks map[string]string `json:"checks,omitempty" doc:"Each dependency and its state." example:"{\"shard:s0\":\"ok\",\"redis\":\"ok\"}"`
}

type healthOutput struct {
	Body healthBody
}

type readyOutput struct {
	Status int
	Body   healthBody
}

func registerHealth(api huma.API, s *Server) {
	huma.Register(api, operation(huma.Operation{
		OperationID: "health",
		Method:      http.MethodGet,
		Path:        "/healthz",
		Summary:     "Liveness",
		Description: "Answers 200 while the process runs. It checks no dependency, so an orchestrator restarts the process only when it is stuck.",
		Tags:        []string{"Health"},
	}, ""), func(ctx context.Context, _ *struct{}) (*healthOutput, error) {
		return &healthOutput{Body: healthBody{Status: "ok"}}, nil
	})

	huma.Register(api, operation(huma.Operation{
		OperationID: "ready",
		Method:      http.MethodGet,
		Path:        "/readyz",
		Summary:     "Readiness",
		Description: "Answers 200 when every database shard and Redis answer within two seconds, and 503 with the failing checks otherwise. " +
			"Redis being down does not stop payments, but a replica without it serves without rate limits or cache, so it is reported.",
		Tags:      []string{"Health"},
		Responses: map[string]*huma.Response{"503": {Description: "A dependency is unreachable."}},
	}, ""), func(ctx context.Context, _ *struct{}) (*readyOutput, error) {
		out := &readyOutput{Status: http.StatusOK, Body: healthBody{Status: "ok", Checks: map[string]string{}}}
		for _, sh := range s.cfg.Router.Map().All() {
			c, cancel := context.WithTimeout(ctx, ReadinessTimeout)
			err := sh.Pool.Ping(c)
			cancel()
			out.Body.Checks["shard:"+sh.Name] = stateOf(err)
			if err != nil {
				out.Status, out.Body.Status = http.StatusServiceUnavailable, "unavailable"
			}
		}
		if s.cfg.Redis != nil {
			c, cancel := context.WithTimeout(ctx, ReadinessTimeout)
			err := s.cfg.Redis.Ping(c).Err()
			cancel()
			out.Body.Checks["redis"] = stateOf(err)
			if err != nil {
				out.Status, out.Body.Status = http.StatusServiceUnavailable, "unavailable"
			}
		}
		return out, nil
	})
}

func stateOf(err error) string {
	if err != nil {
		return "unreachable"
	}
	return "ok"
}

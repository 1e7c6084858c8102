package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/payments-api/payments/processor/sandbox"
)

type sandboxActionInput struct {
	Ref string `path:"ref" maxLength:"2048" doc:"The signed reference from the payment's next_action.redirect_url. A reference the server did not sign answers 404."`
}

type sandboxActionOutput struct {
	Body struct {
		Object string `json:"object" enum:"sandbox_action"`
		Status string `json:"status" doc:"The charge's status after the customer completed the action." example:"succeeded"`
	}
}

// registerSandbox serves what a customer would do at the bank: completing
// 3-D Secure. It exists only while the sandbox is the processor, and the
// outcome reaches the payment through the same path as a processor webhook.
func registerSandbox(api huma.API, s *Server) {
	if s.cfg.Sandbox == nil {
		return
	}
	huma.Register(api, operation(huma.Operation{
		OperationID: "sandbox-complete-action",
		Method:      http.MethodPost,
		Path:        sandbox.ActionPathPrefix + "{ref}",
		Summary:     "Complete 3-D Secure (sandbox)",
		Description: "Sandbox only: plays the customer completing 3-D Secure for a payment in requires_action. POST to the payment's next_action.redirect_url; " +
			"the payment then moves to succeeded (or requires_capture for manual capture), and a payment event is recorded.",
		Tags: []string{"Sandbox"},
	}, "", http.StatusNotFound, http.StatusConflict), handle(func(ctx context.Context, in *sandboxActionInput) (*sandboxActionOutput, error) {
		ch, err := s.cfg.Sandbox.CompleteActionLink(ctx, in.Ref)
		if err != nil {
			return nil, err
		}
		out := &sandboxActionOutput{}
		out.Body.Object, out.Body.Status = "sandbox_action", string(ch.Status)
		return out, nil
	}))
}

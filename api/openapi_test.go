package api_test

import (
	"bytes"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/danielgtaylor/huma/v2"

	"github.com/payments-api/payments/api"
	"github.com/payments-api/payments/processor/sandbox"
)

func documentedAPI(t *testing.T) *api.Server {
	t.Helper()
	sb, err := sandbox.New(sandbox.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sb.Close() })
	return api.New(api.Config{Sandbox: sb})
}

// TestOpenAPIDescribesEveryOperation holds the contract to its promise:
// every operation has an ID, a summary, a description, its error answers
// and, where it needs one, its security scheme; request bodies carry
// examples.
func TestOpenAPIDescribesEveryOperation(t *testing.T) {
	t.Parallel()
	doc := documentedAPI(t).API.OpenAPI()
	count := 0
	for path, item := range doc.Paths {
		for method, op := range map[string]*huma.Operation{"GET": item.Get, "POST": item.Post, "DELETE": item.Delete, "PUT": item.Put, "PATCH": item.Patch} {
			if op == nil {
				continue
			}
			count++
			name := method + " " + path
			if op.OperationID == "" || op.Summary == "" || len(op.Description) < 20 {
				t.Errorf("%s: missing operation ID, summary or description", name)
			}
			if op.Responses["500"] == nil {
				t.Errorf("%s: no 500 response", name)
			}
			fourxx := 0
			for code := range op.Responses {
				if n, _ := strconv.Atoi(code); n >= 400 && n < 500 {
					fourxx++
				}
			}
			if fourxx == 0 && path != "/healthz" && path != "/readyz" {
				t.Errorf("%s: no 4xx responses documented", name)
			}
			public := path == "/healthz" || path == "/readyz" || strings.HasPrefix(path, "/v1/sandbox/")
			if !public && len(op.Security) == 0 {
				t.Errorf("%s: no security requirement", name)
			}
			if strings.HasPrefix(path, "/v1/admin/") && (len(op.Security) == 0 || op.Security[0]["adminToken"] == nil) {
				t.Errorf("%s: admin route without the admin token scheme", name)
			}
			if op.RequestBody != nil {
				b, _ := json.Marshal(op.RequestBody)
				ref := ""
				if s := op.RequestBody.Content["application/json"].Schema; s != nil {
					ref = s.Ref
				}
				if ref != "" {
					s := doc.Components.Schemas.SchemaFromRef(ref)
					b, _ = json.Marshal(s)
				}
				if !bytes.Contains(b, []byte(`"examples"`)) && !bytes.Contains(b, []byte(`"example"`)) {
					t.Errorf("%s: request body without examples", name)
				}
			}
		}
	}
	if count < 20 {
		t.Fatalf("only %d operations documented", count)
	}
	if doc.Components.SecuritySchemes["secretKey"] == nil || doc.Components.SecuritySchemes["adminToken"] == nil {
		t.Fatal("security schemes missing")
	}
}

// TestCommittedOpenAPIIsFresh fails when api/openapi.json no longer
// matches the server: run `make generate`.
func TestCommittedOpenAPIIsFresh(t *testing.T) {
	t.Parallel()
	want, err := json.MarshalIndent(documentedAPI(t).API.OpenAPI(), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatalf("read committed document: %v (run make generate)", err)
	}
	if !bytes.Equal(bytes.TrimSpace(got), bytes.TrimSpace(want)) {
		t.Fatal("api/openapi.json is stale: run `make generate` and commit the result")
	}
}

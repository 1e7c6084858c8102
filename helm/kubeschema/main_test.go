package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

func TestRun(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	swagger := filepath.Join(dir, "swagger.json")
	doc := `{"swagger": "2.0", "definitions": {
	  "io.k8s.api.apps.v1.Deployment": {
	    "x-kubernetes-group-version-kind": [{"group": "apps", "version": "v1", "kind": "Deployment"}],
	    "required": ["spec"],
	    "properties": {"spec": {"$ref": "#/definitions/io.k8s.api.apps.v1.DeploymentSpec"}, "kind": {"type": "string"}}},
	  "io.k8s.api.apps.v1.DeploymentSpec": {"description": "dropped", "properties": {
	    "maxSurge": {"type": "string", "format": "int-or-string"},
	    "cpu": {"$ref": "#/definitions/io.k8s.apimachinery.pkg.api.resource.Quantity"},
	    "self": {"$ref": "#/definitions/io.k8s.api.apps.v1.DeploymentSpec"}}},
	  "io.k8s.apimachinery.pkg.api.resource.Quantity": {"type": "string"}}}`
	if err := os.WriteFile(swagger, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	n, err := run(out, []string{swagger})
	if err != nil || n != 1 {
		t.Fatalf("run: %d, %v; want 1 schema", n, err)
	}
	b, err := os.ReadFile(filepath.Join(out, "deployment-apps-v1.json"))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := `{"additionalProperties":false,"properties":{"kind":{"type":["string","null"]},"spec":{"additionalProperties":false,"properties":{` +
		`"cpu":{"oneOf":[{"type":"string"},{"type":"number"}]},"maxSurge":{"oneOf":[{"type":"string"},{"type":"integer"}]},"self":{}}}},"required":["spec"]}`
	if string(b) != want {
		t.Errorf("schema\n%s\nwant\n%s", b, want)
	}
}

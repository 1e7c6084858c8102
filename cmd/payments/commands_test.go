package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/payments-api/payments/dbtest"
)

// TestMigrateAndTenantCreate runs the CLI against two empty databases:
// migrate up applies to every shard, status shows it, and tenant create
// prints the admin API's JSON.
func TestMigrateAndTenantCreate(t *testing.T) {
	t.Parallel()
	e := map[string]string{
		"DATABASE_URL":    dbtest.NewEmptyDatabase(t),
		"PAYMENTS_SHARDS": "s1:local=" + dbtest.NewEmptyDatabase(t),
	}
	ctx := context.Background()
	var out bytes.Buffer
	if err := run(ctx, []string{"migrate", "status"}, envOf(e), &out, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "pending") {
		t.Fatalf("status before up:\n%s", out.String())
	}
	out.Reset()
	if err := run(ctx, []string{"migrate", "up"}, envOf(e), &out, &out); err != nil {
		t.Fatal(err)
	}
	if strings.Count(out.String(), "applied common/0001_foundation") != 2 {
		t.Fatalf("up did not migrate both shards:\n%s", out.String())
	}
	out.Reset()
	if err := run(ctx, []string{"migrate", "status"}, envOf(e), &out, &out); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "pending") {
		t.Fatalf("status after up:\n%s", out.String())
	}
	out.Reset()
	if err := run(ctx, []string{"tenant", "create", "--name", "Acme Books", "--region", "local"}, envOf(e), &out, &out); err != nil {
		t.Fatal(err)
	}
	var created struct {
		Account struct{ ID, Name, Region string } `json:"account"`
		APIKey  struct{ Secret string }           `json:"api_key"`
	}
	if err := json.Unmarshal(out.Bytes(), &created); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out.String())
	}
	if !strings.HasPrefix(created.Account.ID, "ten_") || created.Account.Name != "Acme Books" || !strings.HasPrefix(created.APIKey.Secret, "sk_test_") {
		t.Fatalf("created %+v", created)
	}
	if err := run(ctx, []string{"tenant", "create", "--name", "X", "--region", "mars"}, envOf(e), &out, &out); err == nil || !strings.Contains(err.Error(), "mars") {
		t.Fatalf("unknown region: %v", err)
	}
}

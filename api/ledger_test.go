package api_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/payments-api/payments/ids"
	"github.com/payments-api/payments/ledger"
)

// checkProof is what a merchant writes to check a proof: hash the leaf,
// fold in the path, compare with the seal's root, and check the seal's
// hash. It uses nothing of this repository.
func checkProof(t *testing.T, proof map[string]any) {
	t.Helper()
	seal := proof["seal"].(map[string]any)
	for _, l := range proof["leaves"].([]any) {
		leaf := l.(map[string]any)
		h := sha256.Sum256(append([]byte{0}, leaf["data"].(string)...))
		for _, s := range leaf["path"].([]any) {
			step := s.(map[string]any)
			sib, err := hex.DecodeString(step["hash"].(string))
			if err != nil {
				t.Fatal(err)
			}
			if step["side"] == "left" {
				h = sha256.Sum256(append(append([]byte{1}, sib...), h[:]...))
			} else {
				h = sha256.Sum256(append(append([]byte{1}, h[:]...), sib...))
			}
		}
		if hex.EncodeToString(h[:]) != seal["merkle_root"] {
			t.Fatalf("leaf %v does not hash up to the seal's root %v", leaf["data"], seal["merkle_root"])
		}
	}
	in := seal["hash_input"].(string)
	if sum := sha256.Sum256([]byte(in)); hex.EncodeToString(sum[:]) != seal["hash"] ||
		!strings.Contains(in, seal["merkle_root"].(string)) || !strings.HasSuffix(in, seal["previous_hash"].(string)) {
		t.Fatalf("seal hash %v does not cover hash_input %q", seal["hash"], in)
	}
}

func TestBalanceAtSealsAndProofs(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	ten := h.createTenant("Acme", nil)
	other := h.createTenant("Other", nil)
	for _, amount := range []int{2000, 3000} {
		if r := h.pay(ten.Secret, visa(amount)); r.Status != http.StatusCreated {
			t.Fatalf("create: %d %s", r.Status, r.Body)
		}
	}
	// Move the bookings three hours back, as if they were old history, and
	// let the closer checkpoint and seal them.
	tenantID, _ := ids.Parse(ids.PrefixTenant, ten.ID)
	booked := time.Now().Add(-3 * time.Hour).Truncate(time.Hour).Add(10 * time.Minute)
	ctx := context.Background()
	for _, s := range h.shards.All() {
		for _, table := range []string{"ledger_entries", "ledger_transactions"} {
			if _, err := s.Pool.Exec(ctx, `UPDATE `+table+` SET created_at = $2 WHERE tenant_id = $1`, tenantID, booked); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := ledger.Close(ctx, s.Pool, ledger.CloseOptions{SealPeriod: time.Hour}); err != nil {
			t.Fatal(err)
		}
	}
	want := int64(2000 - 88 + 3000 - 117)
	if bal := h.do("GET", "/v1/balance", ten.Secret, nil).json(t); num(bal["available"].([]any)[0].(map[string]any)["amount"]) != want {
		t.Fatalf("balance %v, want %d", bal, want)
	}
	before := strconv.FormatInt(booked.Unix()-1, 10)
	if bal := h.do("GET", "/v1/balance?at="+before, ten.Secret, nil).json(t); len(bal["available"].([]any)) != 0 {
		t.Fatalf("balance before the bookings %v, want none", bal)
	}
	at := strconv.FormatInt(booked.Unix(), 10)
	if bal := h.do("GET", "/v1/balance?at="+at, ten.Secret, nil).json(t); num(bal["available"].([]any)[0].(map[string]any)["amount"]) != want {
		t.Fatalf("balance at the bookings %v, want %d", bal, want)
	}
	for _, bad := range []string{"abc", "-5", "0", "1.5", "123456789012", strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10)} {
		if p := expectProblem(t, h.do("GET", "/v1/balance?at="+bad, ten.Secret, nil), http.StatusBadRequest, "parameter_invalid"); p["param"] != "at" {
			t.Errorf("at=%s: param %v, want at", bad, p["param"])
		}
	}

	seals := h.do("GET", "/v1/ledger/seals", ten.Secret, nil).json(t)["data"].([]any)
	if len(seals) != 1 {
		t.Fatalf("seals %v, want one", seals)
	}
	seal := seals[0].(map[string]any)
	if num(seal["entry_count"]) != 6 || num(seal["period_start"]) != booked.Truncate(time.Hour).Unix() ||
		!strings.HasPrefix(seal["id"].(string), "seal_") || seal["previous_hash"] != strings.Repeat("0", 64) {
		t.Fatalf("seal %v", seal)
	}
	if got := h.do("GET", "/v1/ledger/seals", other.Secret, nil).json(t)["data"].([]any); len(got) != 0 {
		t.Fatalf("another tenant sees seals %v", got)
	}
	p := expectProblem(t, h.do("GET", "/v1/ledger/seals?starting_after=pay_x", ten.Secret, nil), http.StatusBadRequest, "parameter_invalid")
	if p["param"] != "starting_after" {
		t.Errorf("bad cursor: param %v", p["param"])
	}

	txs := h.do("GET", "/v1/balance_transactions", ten.Secret, nil).json(t)["data"].([]any)
	for _, tx := range txs {
		id := tx.(map[string]any)["id"].(string)
		r := h.do("GET", "/v1/balance_transactions/"+id+"/proof", ten.Secret, nil)
		if r.Status != http.StatusOK {
			t.Fatalf("proof: %d %s", r.Status, r.Body)
		}
		proof := r.json(t)
		if len(proof["leaves"].([]any)) != 3 || num(proof["tree_size"]) != 6 || proof["seal"].(map[string]any)["id"] != seal["id"] {
			t.Fatalf("proof %s", r.Body)
		}
		checkProof(t, proof)
		expectProblem(t, h.do("GET", "/v1/balance_transactions/"+id+"/proof", other.Secret, nil), http.StatusNotFound, "resource_missing")
	}
	expectProblem(t, h.do("GET", "/v1/balance_transactions/pay_nope/proof", ten.Secret, nil), http.StatusNotFound, "resource_missing")

	// A new payment is not sealed yet.
	h.pay(ten.Secret, visa(500))
	txs = h.do("GET", "/v1/balance_transactions?limit=1", ten.Secret, nil).json(t)["data"].([]any)
	expectProblem(t, h.do("GET", "/v1/balance_transactions/"+txs[0].(map[string]any)["id"].(string)+"/proof", ten.Secret, nil),
		http.StatusConflict, ledger.CodeNotSealed)
}

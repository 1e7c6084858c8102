package loadtest

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

func TestCreateRiskRules(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	got := map[string][]string{} // secret → rule kinds
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var rule struct{ Kind, Action string }
		if r.Method != http.MethodPost || r.URL.Path != "/v1/risk_rules" || json.Unmarshal(b, &rule) != nil || rule.Action != "review" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		mu.Lock()
		got[r.Header.Get("Authorization")] = append(got[r.Header.Get("Authorization")], rule.Kind)
		mu.Unlock()
		w.WriteHeader(http.StatusCreated)
	}))
	defer srv.Close()
	tenants := []Tenant{{ID: "ten_a", Secret: "sk_a"}, {ID: "ten_b", Secret: "sk_b"}}
	if err := CreateRiskRules(context.Background(), srv.Client(), srv.URL, tenants); err != nil {
		t.Fatal(err)
	}
	for _, tn := range tenants {
		kinds := got["Bearer "+tn.Secret]
		if len(kinds) != 2 || kinds[0] != "velocity" || kinds[1] != "impossible_travel" {
			t.Errorf("tenant %s got rules %v, want velocity and impossible_travel", tn.ID, kinds)
		}
	}
	// A refused rule stops the run's setup.
	if err := CreateRiskRules(context.Background(), srv.Client(), srv.URL+"/nowhere", tenants); err == nil {
		t.Error("a refused rule was not reported")
	}
	// Located bodies are valid JSON with a location and a customer.
	for _, b := range [][]byte{bodyCreateLocated, bodyCreateManualLocated} {
		var p struct {
			Customer string
			Location *struct{ Lat, Lon float64 }
		}
		if err := json.Unmarshal(b, &p); err != nil || p.Customer == "" || p.Location == nil {
			t.Errorf("body %s: %v", b, err)
		}
	}
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/payments-api/payments/accounts"
	"github.com/payments-api/payments/dbtest"
	"github.com/payments-api/payments/ids"
	"github.com/payments-api/payments/processor/stripe/stripetest"
	"github.com/payments-api/payments/secretbox"
	"github.com/payments-api/payments/sharding"
	"github.com/payments-api/payments/webhooks"
)

const (
	rotateKeyOld = "0202020202020202020202020202020202020202020202020202020202020202"
	rotateKeyNew = "0303030303030303030303030303030303030303030303030303030303030303"
)

// rotationFixture is what the API answered: every secret a test expects to
// open after the rotation.
type rotationFixture struct {
	mu         sync.Mutex
	tenantKeys map[string]string // tenant ID -> its own Stripe key
	tenantSKs  map[string]string // tenant ID -> its API key
	endpoints  map[string]endpointSecrets
}

type endpointSecrets struct {
	tenant, secret, previous string
}

// serveFor runs `serve` in this process with env plus extra until stop is
// called, and returns its base URL.
func serveFor(t *testing.T, env map[string]string, extra map[string]string) (string, func()) {
	t.Helper()
	e := map[string]string{}
	for k, v := range env {
		e[k] = v
	}
	for k, v := range extra {
		e[k] = v
	}
	addr := freeAddr(t)
	e["PAYMENTS_HTTP_ADDR"] = addr
	ctx, cancel := context.WithCancel(context.Background())
	logs := &lockedBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve"}, envOf(e), io.Discard, logs) }()
	for deadline := time.Now().Add(startWaitMax); !strings.Contains(logs.String(), `"msg":"serving"`); time.Sleep(startPollPause) {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("serve did not start:\n%s", logs.String())
		}
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve: %v\n%s", err, logs.String())
			}
			for _, k := range []string{rotateKeyOld, rotateKeyNew} {
				if strings.Contains(logs.String(), k) {
					t.Errorf("a log line holds an encryption key")
				}
			}
		})
	}
	t.Cleanup(stop)
	return "http://" + addr, stop
}

func (f *rotationFixture) createTenant(t *testing.T, base, token string) string {
	t.Helper()
	status, body := call(t, "POST", base+"/v1/admin/tenants", token, []byte(`{"name":"Acme","region":"local"}`))
	var created struct {
		Account struct{ ID string }     `json:"account"`
		APIKey  struct{ Secret string } `json:"api_key"`
	}
	if err := json.Unmarshal(body, &created); err != nil || status != http.StatusCreated {
		t.Fatalf("create tenant: %d %s", status, body)
	}
	f.mu.Lock()
	f.tenantSKs[created.Account.ID] = created.APIKey.Secret
	f.mu.Unlock()
	return created.Account.ID
}

func (f *rotationFixture) setStripe(t *testing.T, base, token, tenant string, n int) {
	t.Helper()
	key := fmt.Sprintf("sk_test_rotation%04d_0123456789ABCD", n)
	status, body := call(t, "POST", base+"/v1/admin/tenants/"+tenant+"/stripe_account", token,
		[]byte(`{"secret_key":"`+key+`","webhook_secrets":["whsec_rotation_0123456789"]}`))
	if status != http.StatusOK {
		t.Errorf("set stripe account: %d %s", status, body)
		return
	}
	f.mu.Lock()
	f.tenantKeys[tenant] = key
	f.mu.Unlock()
}

type endpointAnswer struct {
	ID     string `json:"id"`
	Secret string `json:"secret"`
}

func (f *rotationFixture) createEndpoint(t *testing.T, base, tenant string) string {
	t.Helper()
	f.mu.Lock()
	sk := f.tenantSKs[tenant]
	f.mu.Unlock()
	status, body := call(t, "POST", base+"/v1/webhook_endpoints", sk, []byte(`{"url":"http://127.0.0.1:9/hooks","enabled_events":["*"]}`))
	var ep endpointAnswer
	if err := json.Unmarshal(body, &ep); err != nil || status != http.StatusCreated || ep.Secret == "" {
		t.Errorf("create endpoint: %d %s", status, body)
		return ""
	}
	f.mu.Lock()
	f.endpoints[ep.ID] = endpointSecrets{tenant: tenant, secret: ep.Secret}
	f.mu.Unlock()
	return ep.ID
}

func (f *rotationFixture) rollSecret(t *testing.T, base, id string) {
	t.Helper()
	f.mu.Lock()
	e := f.endpoints[id]
	sk := f.tenantSKs[e.tenant]
	f.mu.Unlock()
	status, body := call(t, "POST", base+"/v1/webhook_endpoints/"+id+"/rotate_secret", sk, nil)
	var ep endpointAnswer
	if err := json.Unmarshal(body, &ep); err != nil || status != http.StatusOK || ep.Secret == "" {
		t.Errorf("rotate endpoint secret: %d %s", status, body)
		return
	}
	f.mu.Lock()
	f.endpoints[id] = endpointSecrets{tenant: e.tenant, secret: ep.Secret, previous: e.secret}
	f.mu.Unlock()
}

func rotateOnce(t *testing.T, env map[string]string) []rotateReport {
	t.Helper()
	var out, errs bytes.Buffer
	if err := run(context.Background(), []string{"keys", "rotate", "--batch", "2"}, envOf(env), &out, &errs); err != nil {
		t.Fatalf("keys rotate: %v\n%s", err, errs.String())
	}
	var reps []rotateReport
	dec := json.NewDecoder(&out)
	for dec.More() {
		var r rotateReport
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("keys rotate printed %q: %v", out.String(), err)
		}
		reps = append(reps, r)
	}
	if len(reps) != 1 {
		t.Fatalf("keys rotate reported %d shards, want 1: %s", len(reps), out.String())
	}
	return reps
}

// TestKeysRotateWhileServing seals secrets under an old key (and some in
// the clear, from before any key), rotates to a new key with
// `payments keys rotate` while the API keeps writing secrets, removes the
// old key, and checks that every secret still opens to what the API
// answered, and that a tenant's own Stripe account still takes payments.
func TestKeysRotateWhileServing(t *testing.T) {
	t.Parallel()
	d := stripetest.New(t)
	dsn := dbtest.NewDatabase(t)
	token := strings.Repeat("k", 40)
	env := map[string]string{
		"DATABASE_URL": dsn, "REDIS_URL": dbtest.RedisURL(t), "PAYMENTS_REDIS_PREFIX": dbtest.KeyPrefix(t),
		"PAYMENTS_ADMIN_TOKEN": token, "STRIPE_API_BASE": d.URL, "PAYMENTS_WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true",
	}
	f := &rotationFixture{tenantKeys: map[string]string{}, tenantSKs: map[string]string{}, endpoints: map[string]endpointSecrets{}}

	// Before any key: signing secrets are stored in the clear.
	base, stop := serveFor(t, env, nil)
	clearTenant := f.createTenant(t, base, token)
	f.createEndpoint(t, base, clearTenant)
	f.createEndpoint(t, base, clearTenant)
	stop()

	// Under the old key.
	base, stop = serveFor(t, env, map[string]string{"PAYMENTS_ENCRYPTION_KEY": rotateKeyOld})
	var tenants []string
	for i := range 5 {
		ten := f.createTenant(t, base, token)
		tenants = append(tenants, ten)
		f.setStripe(t, base, token, ten, i)
		for range 2 {
			f.createEndpoint(t, base, ten)
		}
		f.rollSecret(t, base, f.createEndpoint(t, base, ten))
	}
	stop()

	// The new key first, the old one after, on the server and the command.
	ring := map[string]string{"PAYMENTS_ENCRYPTION_KEYS": rotateKeyNew + "," + rotateKeyOld}
	base, stop = serveFor(t, env, ring)
	rotEnv := map[string]string{"DATABASE_URL": dsn, "PAYMENTS_ENCRYPTION_KEYS": ring["PAYMENTS_ENCRYPTION_KEYS"]}
	writerDone := make(chan struct{})
	quit := make(chan struct{})
	var writes int
	go func() {
		defer close(writerDone)
		for i := 0; i < 200; i++ {
			writes = i
			select {
			case <-quit:
				return
			default:
			}
			ten := tenants[i%len(tenants)]
			switch i % 3 {
			case 0:
				f.setStripe(t, base, token, ten, 100+i)
			case 1:
				f.createEndpoint(t, base, ten)
			case 2:
				f.mu.Lock()
				var id string
				for k, e := range f.endpoints {
					if e.tenant == ten {
						id = k
						break
					}
				}
				f.mu.Unlock()
				f.rollSecret(t, base, id)
			}
		}
	}()
	first := rotateOnce(t, rotEnv)
	close(quit)
	<-writerDone
	t.Logf("rotation %+v, with %d writes through the API meanwhile", first[0], writes)
	if got := first[0]; got.ProcessorAccounts.Resealed < 1 || got.WebhookEndpoints.Resealed < 1 || got.KeyID == "" {
		t.Fatalf("the rotation resealed nothing: %+v", got)
	}
	// Everything the first run left is current: a second run finds nothing.
	again := rotateOnce(t, rotEnv)[0]
	if again.Passes != 1 || again.ProcessorAccounts.Resealed != 0 || again.WebhookEndpoints.Resealed != 0 ||
		again.ProcessorAccounts.Scanned != len(tenants) || again.WebhookEndpoints.Scanned != len(f.endpoints) {
		t.Fatalf("second rotation: %+v (tenants %d, endpoints %d)", again, len(tenants), len(f.endpoints))
	}
	stop()

	// The old key removed: every secret opens under the new key alone, to
	// what the API answered, and none opens under the old key alone.
	ctx := context.Background()
	newKey, _ := secretbox.ParseKey(rotateKeyNew)
	oldKey, _ := secretbox.ParseKey(rotateKeyOld)
	onlyNew, _ := secretbox.New(newKey)
	onlyOld, _ := secretbox.New(oldKey)
	m, err := sharding.Open(ctx, []sharding.Config{{Name: "s0", Region: "local", DSN: dsn}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	router := sharding.NewRouter(m)
	storeNew, storeOld := accounts.NewStore(router, onlyNew, nil), accounts.NewStore(router, onlyOld, nil)
	hooksNew := webhooks.NewService(webhooks.Options{Router: router, Box: onlyNew})
	for ten, key := range f.tenantKeys {
		id, _ := ids.Parse(ids.PrefixTenant, ten)
		acct, ok, err := storeNew.Stripe(ctx, id)
		if err != nil || !ok || acct.SecretKey != key || len(acct.WebhookSecrets) != 1 || acct.WebhookSecrets[0] != "whsec_rotation_0123456789" {
			t.Errorf("tenant %s under the new key alone: ok=%v err=%v", ten, ok, err)
		}
		if _, _, err := storeOld.Stripe(ctx, id); err == nil {
			t.Errorf("tenant %s's account still opens under the old key alone", ten)
		}
	}
	for epID, want := range f.endpoints {
		ten, _ := ids.Parse(ids.PrefixTenant, want.tenant)
		id, _ := ids.Parse(ids.PrefixWebhook, epID)
		ep, err := hooksNew.GetEndpoint(ctx, ten, id)
		if err != nil || string(ep.Secret) != want.secret {
			t.Errorf("endpoint %s under the new key alone: %v", epID, err)
			continue
		}
		if want.previous != "" && (ep.PreviousSecret == nil || string(*ep.PreviousSecret) != want.previous) {
			t.Errorf("endpoint %s: its previous secret does not open to the one it replaced", epID)
		}
	}
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var clear int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM webhook_endpoints WHERE secret IS NOT NULL OR previous_secret IS NOT NULL`).Scan(&clear); err != nil || clear != 0 {
		t.Errorf("%d endpoints keep a secret in the clear (%v)", clear, err)
	}
	rows, err := pool.Query(ctx, `SELECT secret_key_sealed FROM processor_accounts UNION ALL SELECT webhook_secrets_sealed FROM processor_accounts
		UNION ALL SELECT secret_sealed FROM webhook_endpoints UNION ALL SELECT previous_secret_sealed FROM webhook_endpoints WHERE previous_secret_sealed IS NOT NULL`)
	if err != nil {
		t.Fatal(err)
	}
	var values int
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			t.Fatal(err)
		}
		values++
		if !onlyNew.Current(b) {
			t.Errorf("a stored value is not under the new key")
		}
	}
	if rows.Err() != nil || values < 2*len(tenants)+len(f.endpoints) {
		t.Fatalf("%d sealed values read: %v", values, rows.Err())
	}

	// Served with the new key alone, a tenant's own Stripe account opens
	// and takes a payment.
	base, stop = serveFor(t, env, map[string]string{"PAYMENTS_ENCRYPTION_KEY": rotateKeyNew})
	defer stop()
	status, body := call(t, "POST", base+"/v1/payments", f.tenantSKs[tenants[0]], []byte(`{"amount":1000,"currency":"usd","payment_method":"pm_card_visa"}`))
	var pay struct{ Status, Processor string }
	_ = json.Unmarshal(body, &pay)
	if status != http.StatusCreated || pay.Processor != "stripe" || pay.Status != "succeeded" {
		t.Fatalf("payment through the tenant's own account after the rotation: %d %s", status, body)
	}
}

func TestEncryptionKeysConfig(t *testing.T) {
	t.Parallel()
	load := func(kv map[string]string) (stripeConfig, error) {
		e := goodEnv()
		for k, v := range kv {
			e[k] = v
		}
		c, err := loadConfig(envOf(e), false)
		return c.Stripe, err
	}
	s, err := load(map[string]string{"PAYMENTS_ENCRYPTION_KEYS": rotateKeyNew + ", " + rotateKeyOld})
	if err != nil || len(s.EncryptionKey) != 32 || len(s.EncryptionKeysOlder) != 1 {
		t.Fatalf("two keys: %v", err)
	}
	box, err := s.box()
	if err != nil {
		t.Fatal(err)
	}
	newKey, _ := secretbox.ParseKey(rotateKeyNew)
	onlyNew, _ := secretbox.New(newKey)
	if box.KeyID() != onlyNew.KeyID() {
		t.Fatal("the first key of PAYMENTS_ENCRYPTION_KEYS is not the current one")
	}
	// The one-key variable keeps working, and may stand beside the list
	// when it names the same current key.
	if s, err := load(map[string]string{"PAYMENTS_ENCRYPTION_KEY": rotateKeyOld}); err != nil || len(s.EncryptionKey) != 32 || len(s.EncryptionKeysOlder) != 0 {
		t.Fatalf("PAYMENTS_ENCRYPTION_KEY alone: %v", err)
	}
	if _, err := load(map[string]string{"PAYMENTS_ENCRYPTION_KEY": rotateKeyNew, "PAYMENTS_ENCRYPTION_KEYS": rotateKeyNew + "," + rotateKeyOld}); err != nil {
		t.Fatalf("both variables agreeing: %v", err)
	}
	many := make([]string, secretbox.KeysMax+1)
	for i := range many {
		many[i] = fmt.Sprintf("%064x", i+1)
	}
	for name, kv := range map[string]map[string]string{
		"both variables disagreeing": {"PAYMENTS_ENCRYPTION_KEY": rotateKeyOld, "PAYMENTS_ENCRYPTION_KEYS": rotateKeyNew + "," + rotateKeyOld},
		"a short key in the list":    {"PAYMENTS_ENCRYPTION_KEYS": rotateKeyNew + ",0123456789abcdef"},
		"an empty key in the list":   {"PAYMENTS_ENCRYPTION_KEYS": rotateKeyNew + ",,"},
		"a key twice":                {"PAYMENTS_ENCRYPTION_KEYS": rotateKeyNew + "," + rotateKeyOld + "," + rotateKeyNew},
		"too many keys":              {"PAYMENTS_ENCRYPTION_KEYS": strings.Join(many, ",")},
	} {
		_, err := load(kv)
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if !strings.Contains(err.Error(), "PAYMENTS_ENCRYPTION_KEY") || strings.Contains(err.Error(), rotateKeyNew) || strings.Contains(err.Error(), rotateKeyOld) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestKeysRotateRefusesBadInput(t *testing.T) {
	t.Parallel()
	e := goodEnv()
	for _, args := range [][]string{{"keys"}, {"keys", "spin"}, {"keys", "rotate", "--batch", "0"}, {"keys", "rotate", "--batch", "1001"}} {
		if err := run(context.Background(), args, envOf(e), io.Discard, io.Discard); err == nil {
			t.Errorf("%v: accepted", args)
		}
	}
	// Without a key there is nothing to rotate to; this fails before any
	// connection is made.
	if err := run(context.Background(), []string{"keys", "rotate"}, envOf(e), io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "PAYMENTS_ENCRYPTION_KEYS") {
		t.Errorf("rotate without a key: %v", err)
	}
}

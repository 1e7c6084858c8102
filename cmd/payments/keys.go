package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/payments-api/payments/accounts"
	"github.com/payments-api/payments/secretbox"
	"github.com/payments-api/payments/sharding"
	"github.com/payments-api/payments/webhooks"
)

// Bounds of `payments keys rotate`.
const (
	// rotateBatchDefault is the rows of one reseal transaction.
	rotateBatchDefault = 100
	// rotatePassesMax bounds the passes over a shard: a pass reseals what
	// another key sealed, and the next one finds nothing left unless a
	// serving process wrote rows meanwhile.
	rotatePassesMax = 5
)

// rotateReport is what `payments keys rotate` prints for one shard.
type rotateReport struct {
	Shard             string                `json:"shard"`
	KeyID             string                `json:"key_id"`
	Passes            int                   `json:"passes"`
	ProcessorAccounts secretbox.ResealCount `json:"processor_accounts"`
	WebhookEndpoints  secretbox.ResealCount `json:"webhook_endpoints"`
}

// keysCmd is `payments keys rotate`: it seals every stored secret again
// under the current encryption key (the first of PAYMENTS_ENCRYPTION_KEYS),
// shard by shard, in bounded batches, while the API serves. Every replica
// must already run with the new keyring (new key first, old keys after), so
// that each of them opens both and seals only under the new one; after it,
// the old keys can be removed.
func keysCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) < 1 || args[0] != "rotate" {
		return errors.New("usage: payments keys rotate [--batch N]")
	}
	fs := flag.NewFlagSet("keys rotate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	batch := fs.Int("batch", rotateBatchDefault, "rows resealed per transaction")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *batch < 1 || *batch > accounts.ResealBatchMax || *batch > webhooks.ResealBatchMax {
		return fmt.Errorf("--batch %d: want 1 to %d", *batch, min(accounts.ResealBatchMax, webhooks.ResealBatchMax))
	}
	c, err := loadConfig(getenv, false)
	if err != nil {
		return err
	}
	box, err := c.Stripe.box()
	if err != nil {
		return err
	}
	if box == nil {
		return errors.New("no encryption key: set PAYMENTS_ENCRYPTION_KEYS to the new key, then the old ones, comma-separated")
	}
	m, err := openShards(ctx, c, nil)
	if err != nil {
		return err
	}
	defer m.Close()
	if pending, err := pendingMigrations(ctx, m); err != nil {
		return err
	} else if len(pending) > 0 {
		return fmt.Errorf("%d migration(s) pending: run `payments migrate up`", len(pending))
	}
	router := sharding.NewRouter(m)
	store := accounts.NewStore(router, box, nil)
	hooks := webhooks.NewService(webhooks.Options{Router: router, Box: box})
	enc := json.NewEncoder(stdout)
	for _, sh := range m.All() {
		rep, err := rotateShard(ctx, sh, store, hooks, *batch)
		rep.KeyID = box.KeyID()
		if err != nil {
			return fmt.Errorf("shard %s: %w", sh.Name, err)
		}
		if err := enc.Encode(rep); err != nil {
			return err
		}
	}
	return nil
}

// rotateShard runs passes over one shard until one finds nothing to reseal.
func rotateShard(ctx context.Context, sh *sharding.Shard, store *accounts.Store, hooks *webhooks.Service, batch int) (rotateReport, error) {
	rep := rotateReport{Shard: sh.Name}
	for rep.Passes < rotatePassesMax {
		rep.Passes++
		a, err := store.Reseal(ctx, sh, batch)
		if err != nil {
			return rep, err
		}
		w, err := hooks.Reseal(ctx, sh, batch)
		if err != nil {
			return rep, err
		}
		if rep.Passes == 1 {
			rep.ProcessorAccounts, rep.WebhookEndpoints = a, w
		} else {
			rep.ProcessorAccounts.Resealed += a.Resealed
			rep.ProcessorAccounts.Changed += a.Changed
			rep.WebhookEndpoints.Resealed += w.Resealed
			rep.WebhookEndpoints.Changed += w.Changed
		}
		if a.Resealed+a.Changed+w.Resealed+w.Changed == 0 {
			return rep, nil
		}
	}
	return rep, fmt.Errorf("rows were still sealed under an older key after %d passes: is a replica still running with another current key? Run again once every replica has the new PAYMENTS_ENCRYPTION_KEYS", rotatePassesMax)
}

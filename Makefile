# The two commands of the README are `make run` and `make test`.
# `make help` lists every target.

SHELL := /usr/bin/env bash
GO    ?= go

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "} {printf "  %-12s %s\n", $$1, $$2}'

.PHONY: run
run: ## Start PostgreSQL and Redis under ./.dev, migrate, and serve the API on PAYMENTS_HTTP_ADDR (default 127.0.0.1:8080)
	@scripts/run.sh

.PHONY: test
test: ## Start test PostgreSQL, Redis and stripe-mock on their own ports, then run every test with the race detector
	@scripts/test.sh

.PHONY: chaos
chaos: ## Fault-injection suite for CHAOS_DURATION (10m) with a replayable CHAOS_SEED, then the Patroni failover scenario (CHAOS_PATRONI=false skips it); results in chaos-results/
	@scripts/chaos.sh

.PHONY: bench
bench: ## Run the Go benchmarks against the test services (results: docs/BENCHMARKS.md)
	@scripts/test.sh bench

.PHONY: fuzz
fuzz: ## Run every fuzz target for FUZZTIME each (default 30s) against the test services; findings land in testdata/fuzz
	@scripts/test.sh fuzz

.PHONY: restore-drill
restore-drill: ## Back up a live database (pg_basebackup + archived WAL), restore it into a fresh cluster and check every acknowledged payment
	@scripts/restore-drill.sh

.PHONY: build
build: ## Build bin/payments
	$(GO) build -o bin/payments ./cmd/payments

# generate also redraws the schema diagram; a rule of its own keeps the
# generate target's lines untouched.
generate: schema-diagram
.PHONY: schema-diagram
schema-diagram: ## Regenerate docs/design/schema.md from the migrations (starts the test PostgreSQL unless PAYMENTS_TEST_DATABASE_URL is set)
	@docs/design/schemagen/generate.sh

.PHONY: lint
lint: ## go vet and gofmt
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo 'gofmt needed'; exit 1; }

.PHONY: generate
generate: ## Regenerate the committed OpenAPI documents and both SDKs' generated layers
	$(GO) run ./cmd/payments openapi --version 3.1 > api/openapi.json
	$(GO) run ./cmd/payments openapi --version 3.0 > api/openapi-3.0.json
	@scripts/sdk-generate.sh

.PHONY: stop
stop: ## Stop the PostgreSQL and Redis that `make run` started (data is kept)
	@scripts/services.sh down .dev $${PAYMENTS_DEV_PG_PORT:-15432} $${PAYMENTS_DEV_REDIS_PORT:-16379}

.PHONY: clean
clean: stop ## Stop the services and delete ./.dev and ./bin
	rm -rf .dev bin

.PHONY: loadtest
loadtest: ## Offer stepped load to the server of `make run` (in another terminal); flags in LOADTEST_FLAGS, results in loadtest-results/
	$(GO) build -o bin/loadtest ./loadtest/cmd/loadtest
	@pid=$$(pgrep -f '[b]in/payments serve' | head -n 1 || true); \
	bin/loadtest -base "http://$${PAYMENTS_HTTP_ADDR:-127.0.0.1:8080}" $${pid:+-server-pid $$pid} $(LOADTEST_FLAGS)

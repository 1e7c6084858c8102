/**
 * The TypeScript client of the Payments API.
 *
 * schema.gen.ts is generated from the committed OpenAPI document
 * (api/openapi.json) by openapi-typescript; regenerate it with
 * scripts/sdk-generate.sh, never by hand. `api` is the openapi-fetch client
 * of every operation. The rest is a thin hand-written layer: the API key,
 * an automatic Idempotency-Key on every POST kept across that call's
 * retries, retries with exponential backoff and jitter (network errors,
 * 409 in flight, 429, 5xx; Retry-After honoured), typed errors by class and
 * code, pagination iterators and the webhook signature verifier.
 */
import createClient, { type Client } from "openapi-fetch";
import { errorFrom } from "./errors.js";
import type { components, operations, paths } from "./schema.gen.js";
import {
  BACKOFF_BASE_MS_DEFAULT,
  BACKOFF_MAX_MS_DEFAULT,
  RETRIES_MAX_DEFAULT,
  RETRIES_MAX_LIMIT,
  makeFetch,
  sleep,
} from "./transport.js";

export * from "./errors.js";
export * from "./webhook.js";
export { newIdempotencyKey, IDEMPOTENCY_KEY_PREFIX, RETRIES_MAX_DEFAULT, RETRIES_MAX_LIMIT } from "./transport.js";
export type { components, operations, paths } from "./schema.gen.js";

type Schemas = components["schemas"];
/** A payment (object "payment"). */
export type Payment = Schemas["Payment"];
/** A refund (object "refund"). */
export type Refund = Schemas["Refund"];
/** An event; webhooks deliver it as is. */
export type Event = Schemas["Event"];
/** A webhook endpoint. */
export type WebhookEndpoint = Schemas["WebhookEndpoint"];
/** The account's balance per currency. */
export type Balance = Schemas["Balance"];
/** One movement of the balance. */
export type BalanceTransaction = Schemas["BalanceTransaction"];
/** The calling tenant's account. */
export type Account = Schemas["Account"];

type Body<Op extends keyof operations> = operations[Op] extends { requestBody?: { content: { "application/json": infer B } } } ? B : never;
type Query<Op extends keyof operations> = NonNullable<operations[Op]["parameters"]["query"]>;

export type CreatePaymentParams = Body<"create-payment">;
export type CapturePaymentParams = Body<"capture-payment">;
export type CreateRefundParams = Body<"create-refund">;
export type CreateWebhookEndpointParams = Body<"create-webhook-endpoint">;
export type ListPaymentsParams = Query<"list-payments">;
export type ListRefundsParams = Query<"list-refunds">;
export type ListEventsParams = Query<"list-events">;
export type ListBalanceTransactionsParams = Query<"list-balance-transactions">;
export type ListWebhookEndpointsParams = Query<"list-webhook-endpoints">;

/** The page size of the iterators when the caller sets no limit. */
export const PAGE_LIMIT_DEFAULT = 100;
/** The bound of pages one iteration reads. */
export const PAGES_MAX = 100_000;

export interface ClientOptions {
  /** The API's address, such as http://127.0.0.1:8080 (no /v1). */
  baseUrl: string;
  /** Retries after the first attempt: default 3, 0 for none, at most 10. */
  retriesMax?: number;
  /** The first retry's delay ceiling in ms (doubled each retry; full jitter). */
  backoffBaseMs?: number;
  /** The cap of a retry's delay in ms, Retry-After included. */
  backoffMaxMs?: number;
  /** Sends each attempt; default: the global fetch. */
  fetch?: (req: Request) => Promise<Response>;
  /** Waits between attempts; tests replace it to observe the delays. */
  sleep?: (ms: number, signal?: AbortSignal | null) => Promise<void>;
}

/** Options of one call. */
export interface RequestOptions {
  /** Sent instead of a fresh key, so that a call repeated later replays the first one's answer. */
  idempotencyKey?: string;
  /** Aborts the call and its retries. */
  signal?: AbortSignal;
  /** Called with the final answer (its Request-Id, Idempotent-Replayed and RateLimit-* headers). */
  onResponse?: (res: Response) => void;
}

interface Outcome {
  data?: unknown;
  error?: unknown;
  response: Response;
}

async function unwrap<T>(call: Promise<Outcome>, opts?: RequestOptions): Promise<T> {
  const { data, error, response } = await call;
  opts?.onResponse?.(response);
  if (!response.ok) throw errorFrom(response.status, response.headers, error);
  return data as T;
}

function init(opts?: RequestOptions): { headers?: Record<string, string>; signal?: AbortSignal } {
  const out: { headers?: Record<string, string>; signal?: AbortSignal } = {};
  if (opts?.idempotencyKey) out.headers = { "Idempotency-Key": opts.idempotencyKey };
  if (opts?.signal) out.signal = opts.signal;
  return out;
}

/**
 * paginate walks a list newest first, page after page, by starting_after
 * the last object of the previous page.
 */
async function* paginate<T extends { id: string }>(
  first: string | undefined,
  page: (startingAfter: string | undefined) => Promise<{ data: T[]; has_more: boolean }>,
): AsyncGenerator<T, void, undefined> {
  let after = first;
  for (let i = 0; i < PAGES_MAX; i++) {
    const p = await page(after);
    yield* p.data;
    const last = p.data[p.data.length - 1];
    if (!p.has_more || last === undefined) return;
    after = last.id;
  }
  throw new Error(`payments: more than ${PAGES_MAX} pages`);
}

/** The Payments API client. */
export class Payments {
  /** The openapi-fetch client of every operation, admin ones included, through the same transport. */
  readonly api: Client<paths>;
  readonly account: AccountService;
  readonly payments: PaymentService;
  readonly refunds: RefundService;
  readonly events: EventService;
  readonly balance: BalanceService;
  readonly webhookEndpoints: WebhookEndpointService;

  /** apiKey is a tenant's sk_test_.../sk_live_... key, or the admin token for /v1/admin calls. */
  constructor(apiKey: string, options: ClientOptions) {
    if (!apiKey) throw new Error("payments: an API key is required");
    if (!options.baseUrl) throw new Error("payments: baseUrl is required, such as http://127.0.0.1:8080");
    const retriesMax = options.retriesMax ?? RETRIES_MAX_DEFAULT;
    if (!Number.isInteger(retriesMax) || retriesMax < 0 || retriesMax > RETRIES_MAX_LIMIT) {
      throw new Error(`payments: retriesMax must be an integer from 0 to ${RETRIES_MAX_LIMIT}`);
    }
    const fetch = makeFetch({
      apiKey,
      retriesMax,
      backoffBaseMs: options.backoffBaseMs ?? BACKOFF_BASE_MS_DEFAULT,
      backoffMaxMs: options.backoffMaxMs ?? BACKOFF_MAX_MS_DEFAULT,
      sleep: options.sleep ?? sleep,
      fetch: options.fetch ?? ((req: Request) => globalThis.fetch(req)),
    });
    this.api = createClient<paths>({ baseUrl: options.baseUrl.replace(/\/+$/, ""), fetch });
    this.account = new AccountService(this.api);
    this.payments = new PaymentService(this.api);
    this.refunds = new RefundService(this.api);
    this.events = new EventService(this.api);
    this.balance = new BalanceService(this.api);
    this.webhookEndpoints = new WebhookEndpointService(this.api);
  }
}

/** check answers the data of an `api` call, or throws its typed error. */
export function check<T>(outcome: { data?: T; error?: unknown; response: Response }): T {
  if (!outcome.response.ok) throw errorFrom(outcome.response.status, outcome.response.headers, outcome.error);
  return outcome.data as T;
}

export class AccountService {
  constructor(private readonly api: Client<paths>) {}
  /** The account of the API key. */
  retrieve(opts?: RequestOptions): Promise<Account> {
    return unwrap(this.api.GET("/v1/account", { ...init(opts) }), opts);
  }
}

export class PaymentService {
  constructor(private readonly api: Client<paths>) {}
  /** Creates a payment. A decline throws a CardError whose `payment` names the failed payment. */
  create(body: CreatePaymentParams, opts?: RequestOptions): Promise<Payment> {
    return unwrap(this.api.POST("/v1/payments", { body, ...init(opts) }), opts);
  }
  retrieve(id: string, opts?: RequestOptions): Promise<Payment> {
    return unwrap(this.api.GET("/v1/payments/{id}", { params: { path: { id } }, ...init(opts) }), opts);
  }
  /** Captures a requires_capture payment, in full without amount_to_capture. */
  capture(id: string, body: CapturePaymentParams = {}, opts?: RequestOptions): Promise<Payment> {
    return unwrap(this.api.POST("/v1/payments/{id}/capture", { params: { path: { id } }, body, ...init(opts) }), opts);
  }
  cancel(id: string, opts?: RequestOptions): Promise<Payment> {
    return unwrap(this.api.POST("/v1/payments/{id}/cancel", { params: { path: { id } }, ...init(opts) }), opts);
  }
  /** Plays the customer completing 3-D Secure (sandbox only): redirectUrl is next_action.redirect_url. */
  async completeSandboxAction(redirectUrl: string, opts?: RequestOptions): Promise<void> {
    const ref = redirectUrl.slice(redirectUrl.lastIndexOf("/") + 1);
    await unwrap(this.api.POST("/v1/sandbox/3ds/{ref}", { params: { path: { ref } }, ...init(opts) }), opts);
  }
  /** Every payment that matches query, newest first, page after page. */
  list(query: ListPaymentsParams = {}, opts?: RequestOptions): AsyncGenerator<Payment, void, undefined> {
    return paginate(query.starting_after, (after) =>
      unwrap(this.api.GET("/v1/payments", { params: { query: { ...query, limit: query.limit ?? PAGE_LIMIT_DEFAULT, starting_after: after } }, ...init(opts) }), opts),
    );
  }
}

export class RefundService {
  constructor(private readonly api: Client<paths>) {}
  /** Refunds a payment, in full without amount. */
  create(body: CreateRefundParams, opts?: RequestOptions): Promise<Refund> {
    return unwrap(this.api.POST("/v1/refunds", { body, ...init(opts) }), opts);
  }
  retrieve(id: string, opts?: RequestOptions): Promise<Refund> {
    return unwrap(this.api.GET("/v1/refunds/{id}", { params: { path: { id } }, ...init(opts) }), opts);
  }
  list(query: ListRefundsParams = {}, opts?: RequestOptions): AsyncGenerator<Refund, void, undefined> {
    return paginate(query.starting_after, (after) =>
      unwrap(this.api.GET("/v1/refunds", { params: { query: { ...query, limit: query.limit ?? PAGE_LIMIT_DEFAULT, starting_after: after } }, ...init(opts) }), opts),
    );
  }
}

export class EventService {
  constructor(private readonly api: Client<paths>) {}
  retrieve(id: string, opts?: RequestOptions): Promise<Event> {
    return unwrap(this.api.GET("/v1/events/{id}", { params: { path: { id } }, ...init(opts) }), opts);
  }
  list(query: ListEventsParams = {}, opts?: RequestOptions): AsyncGenerator<Event, void, undefined> {
    return paginate(query.starting_after, (after) =>
      unwrap(this.api.GET("/v1/events", { params: { query: { ...query, limit: query.limit ?? PAGE_LIMIT_DEFAULT, starting_after: after } }, ...init(opts) }), opts),
    );
  }
}

export class BalanceService {
  constructor(private readonly api: Client<paths>) {}
  retrieve(opts?: RequestOptions): Promise<Balance> {
    return unwrap(this.api.GET("/v1/balance", { ...init(opts) }), opts);
  }
  listTransactions(query: ListBalanceTransactionsParams = {}, opts?: RequestOptions): AsyncGenerator<BalanceTransaction, void, undefined> {
    return paginate(query.starting_after, (after) =>
      unwrap(
        this.api.GET("/v1/balance_transactions", { params: { query: { ...query, limit: query.limit ?? PAGE_LIMIT_DEFAULT, starting_after: after } }, ...init(opts) }),
        opts,
      ),
    );
  }
}

export class WebhookEndpointService {
  constructor(private readonly api: Client<paths>) {}
  /** Registers an endpoint; the answer shows its signing secret once. */
  create(body: CreateWebhookEndpointParams, opts?: RequestOptions): Promise<WebhookEndpoint> {
    return unwrap(this.api.POST("/v1/webhook_endpoints", { body, ...init(opts) }), opts);
  }
  retrieve(id: string, opts?: RequestOptions): Promise<WebhookEndpoint> {
    return unwrap(this.api.GET("/v1/webhook_endpoints/{id}", { params: { path: { id } }, ...init(opts) }), opts);
  }
  async del(id: string, opts?: RequestOptions): Promise<void> {
    await unwrap(this.api.DELETE("/v1/webhook_endpoints/{id}", { params: { path: { id } }, ...init(opts) }), opts);
  }
  /** A new signing secret; the old one keeps signing beside it for 24 hours. */
  rotateSecret(id: string, opts?: RequestOptions): Promise<WebhookEndpoint> {
    return unwrap(this.api.POST("/v1/webhook_endpoints/{id}/rotate_secret", { params: { path: { id } }, ...init(opts) }), opts);
  }
  list(query: ListWebhookEndpointsParams = {}, opts?: RequestOptions): AsyncGenerator<WebhookEndpoint, void, undefined> {
    return paginate(query.starting_after, (after) =>
      unwrap(
        this.api.GET("/v1/webhook_endpoints", { params: { query: { ...query, limit: query.limit ?? PAGE_LIMIT_DEFAULT, starting_after: after } }, ...init(opts) }),
        opts,
      ),
    );
  }
}

// Load test of the payments API: steady payment creation at 10,000/s, a
// mixed flow (authorize, capture, read, refund) and a spike. See README.md.
//
//   k6 run -e BASE_URL=http://127.0.0.1:8080 -e ADMIN_TOKEN=... loadtest/k6/payments.ts
import { check } from "k6";
import { Options, Scenario } from "k6/options";
import { Client, createTenants, payment, Tenants } from "./api.ts";

function num(name: string, def: number): number {
  const v = __ENV[name];
  if (v === undefined || v === "") {
    return def;
  }
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) {
    throw new Error(`${name}=${v}: want a non-negative number`);
  }
  return n;
}

const RATE = num("RATE", 10_000);
const DURATION = __ENV.DURATION || "2m";
const MIXED_RATE = num("MIXED_RATE", 500);
const MIXED_DURATION = __ENV.MIXED_DURATION || "2m";
const SPIKE_BASE = num("SPIKE_BASE", 1_000);
const SPIKE_PEAK = num("SPIKE_PEAK", 20_000);
const TENANTS = Math.max(1, num("TENANTS", 20));
// Per-tenant limit: the peak spread over the tenants, with headroom.
const TENANT_RATE = Math.min(
  1_000_000,
  num("TENANT_RATE_LIMIT", Math.ceil((1.5 * Math.max(RATE, SPIKE_PEAK, 5 * MIXED_RATE)) / TENANTS)),
);
const SELECTED = (__ENV.SCENARIOS || "create,mixed,spike").split(",").map((s) => s.trim());

// VUs needed = rate x latency; these cover 100 ms per request at the peak.
function vus(rate: number): { preAllocatedVUs: number; maxVUs: number } {
  return { preAllocatedVUs: Math.ceil(rate / 10), maxVUs: Math.ceil(rate / 2) };
}

function seconds(d: string): number {
  const m = /^(\d+)(s|m|h)$/.exec(d);
  if (!m) {
    throw new Error(`duration ${d}: want a number and s, m or h`);
  }
  return Number(m[1]) * { s: 1, m: 60, h: 3600 }[m[2] as "s" | "m" | "h"];
}

const spikeStages = [
  { target: SPIKE_BASE, duration: "30s" },
  { target: SPIKE_PEAK, duration: "10s" },
  { target: SPIKE_PEAK, duration: "30s" },
  { target: SPIKE_BASE, duration: "10s" },
  { target: SPIKE_BASE, duration: "20s" },
];

const all: Record<string, [Scenario, number]> = {
  create: [
    { executor: "constant-arrival-rate", exec: "create", rate: RATE, timeUnit: "1s", duration: DURATION, ...vus(RATE) },
    seconds(DURATION),
  ],
  mixed: [
    // Five requests per iteration.
    { executor: "constant-arrival-rate", exec: "mixed", rate: MIXED_RATE, timeUnit: "1s", duration: MIXED_DURATION, ...vus(5 * MIXED_RATE) },
    seconds(MIXED_DURATION),
  ],
  spike: [
    { executor: "ramping-arrival-rate", exec: "create", startRate: SPIKE_BASE, timeUnit: "1s", stages: spikeStages, ...vus(SPIKE_PEAK) },
    spikeStages.reduce((s, x) => s + seconds(x.duration), 0),
  ],
};

// The selected scenarios run one after the other, so each one's latency
// is its own.
const scenarios: Record<string, Scenario> = {};
let start = 0;
for (const name of SELECTED) {
  const s = all[name];
  if (!s) {
    throw new Error(`SCENARIOS: unknown scenario ${name}; want create, mixed or spike`);
  }
  scenarios[name] = { ...s[0], startTime: `${start}s`, gracefulStop: "10s" };
  start += s[1] + 10;
}

export const options: Options = {
  scenarios,
  thresholds: {
    // The service's latency objective for creating a payment.
    "http_req_duration{scenario:create}": ["p(99)<200"],
    "http_req_duration{scenario:mixed}": ["p(99)<300"],
    // Fewer than 1 request in 1,000 answers an error (4xx or 5xx) or fails.
    http_req_failed: ["rate<0.001"],
    // An iteration k6 could not start in time means the load generator, not
    // the service, set the pace: the run does not prove the target rate.
    dropped_iterations: ["count==0"],
    checks: ["rate>0.999"],
  },
  // Requests are tagged by route; no per-URL series for the IDs.
  systemTags: ["proto", "status", "method", "name", "group", "check", "error", "error_code", "scenario", "expected_response"],
  summaryTrendStats: ["avg", "min", "med", "p(90)", "p(99)", "p(99.9)", "max"],
  setupTimeout: "60s",
};

export function setup(): Tenants {
  return createTenants(__ENV.ADMIN_TOKEN || "", TENANTS, __ENV.REGION || "local", TENANT_RATE);
}

const card = { amount: 2000, currency: "usd", payment_method: "pm_card_visa" };

// create: one payment, captured at once.
export function create(t: Tenants): void {
  const res = new Client(t).post("/v1/payments", "POST /v1/payments", "create", card);
  check(res, {
    "payment created": (r) => r.status === 201,
    "payment succeeded": (r) => payment(r)?.status === "succeeded",
  });
}

// mixed: authorize, capture, read, refund part, read again.
export function mixed(t: Tenants): void {
  const c = new Client(t);
  const auth = c.post("/v1/payments", "POST /v1/payments", "create", { ...card, capture_method: "manual" });
  const p = payment(auth);
  const ok = check(auth, {
    "payment authorized": (r) => r.status === 201 && p?.status === "requires_capture",
  });
  if (!ok || !p) {
    return;
  }
  const id = encodeURIComponent(p.id);
  const cap = c.post(`/v1/payments/${id}/capture`, "POST /v1/payments/{id}/capture", "capture", {});
  check(cap, { "payment captured": (r) => r.status === 200 && payment(r)?.status === "succeeded" });

  const read = c.get(`/v1/payments/${id}`, "GET /v1/payments/{id}");
  check(read, { "payment read": (r) => r.status === 200 && payment(r)?.id === p.id });

  const refund = c.post("/v1/refunds", "POST /v1/refunds", "refund", { payment: p.id, amount: 500 });
  check(refund, { "refund created": (r) => r.status === 201 });

  const after = c.get(`/v1/payments/${id}`, "GET /v1/payments/{id}");
  check(after, { "payment read after refund": (r) => r.status === 200 });
}

// A thin client of the payments API for the k6 scenarios.
import http, { RefinedResponse, ResponseType } from "k6/http";
import exec from "k6/execution";
import { fail } from "k6";

export const BASE_URL = (__ENV.BASE_URL || "http://127.0.0.1:8080").replace(/\/+$/, "");

export interface Payment {
  id: string;
  status: string;
  amount: number;
}

// What setup() hands every iteration: one secret key per tenant.
export interface Tenants {
  runId: string;
  keys: string[];
}

type Response = RefinedResponse<ResponseType | undefined>;

interface TenantCreated {
  api_key?: { secret?: string };
}

// createTenants makes `count` tenants with rate limits high enough for the
// test: the server default (100/s per tenant) would answer 429 long before
// the target rate.
export function createTenants(adminToken: string, count: number, region: string, ratePerSecond: number): Tenants {
  if (!adminToken) {
    fail("ADMIN_TOKEN is not set: pass the server's PAYMENTS_ADMIN_TOKEN with -e ADMIN_TOKEN=...");
  }
  const runId = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e9).toString(36)}`;
  const headers = { Authorization: `Bearer ${adminToken}`, "Content-Type": "application/json" };
  const requests = [];
  for (let i = 0; i < count; i++) {
    const body = {
      name: `k6 ${runId} ${i}`,
      region,
      rate_limit_per_second: ratePerSecond,
      rate_limit_burst: Math.min(2 * ratePerSecond, 1_000_000),
    };
    requests.push({
      method: "POST",
      url: `${BASE_URL}/v1/admin/tenants`,
      body: JSON.stringify(body),
      params: { headers, tags: { name: "POST /v1/admin/tenants" } },
    });
  }
  const keys = http.batch(requests).map((res, i) => {
    if (res.status !== 201) {
      fail(`tenant ${i}: POST /v1/admin/tenants answered ${res.status}: ${String(res.body).slice(0, 300)}`);
    }
    const secret = (res.json() as TenantCreated).api_key?.secret;
    if (!secret) {
      fail(`tenant ${i}: the answer has no api_key.secret`);
    }
    return secret;
  });
  return { runId, keys };
}

// Client sends one iteration's requests as one tenant, with an
// Idempotency-Key unique to the run, scenario, iteration and step.
export class Client {
  private readonly key: string;
  private readonly prefix: string;

  constructor(t: Tenants) {
    const n = exec.scenario.iterationInTest;
    this.key = t.keys[n % t.keys.length];
    this.prefix = `k6-${t.runId}-${exec.scenario.name}-${n}`;
  }

  // name tags the request, so URLs with IDs share one time series.
  post(path: string, name: string, step: string, body: object): Response {
    return http.post(`${BASE_URL}${path}`, JSON.stringify(body), {
      headers: this.headers({ "Content-Type": "application/json", "Idempotency-Key": `${this.prefix}-${step}` }),
      tags: { name },
    });
  }

  get(path: string, name: string): Response {
    return http.get(`${BASE_URL}${path}`, { headers: this.headers({}), tags: { name } });
  }

  private headers(extra: Record<string, string>): Record<string, string> {
    return { Authorization: `Bearer ${this.key}`, ...extra };
  }
}

export function payment(res: Response): Payment | undefined {
  try {
    return res.json() as unknown as Payment;
  } catch {
    return undefined;
  }
}

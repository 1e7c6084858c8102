import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import {
  APIError,
  AuthenticationError,
  CardError,
  IdempotencyError,
  IDEMPOTENCY_KEY_PREFIX,
  InvalidRequestError,
  newIdempotencyKey,
  PAYLOAD_BYTES_MAX,
  Payments,
  PaymentsError,
  PermissionError,
  RateLimitError,
  SIGNATURE_HEADER_BYTES_MAX,
  SignatureVerificationError,
  verifySignature,
} from "../src/index.js";

interface Answer {
  status?: number;
  headers?: Record<string, string>;
  body?: string;
  drop?: boolean;
}

interface Attempt {
  method: string;
  url: string;
  auth: string | undefined;
  key: string | undefined;
  body: string;
}

/** A loopback server that answers the n-th request with answers[n] (the last repeats). */
async function scripted(answers: Answer[]): Promise<{ base: string; attempts: Attempt[]; close: () => Promise<void> }> {
  const attempts: Attempt[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => {
      attempts.push({
        method: req.method ?? "",
        url: req.url ?? "",
        auth: req.headers.authorization,
        key: req.headers["idempotency-key"] as string | undefined,
        body,
      });
      const a = answers[Math.min(attempts.length, answers.length) - 1]!;
      if (a.drop) {
        req.socket.destroy();
        return;
      }
      res.writeHead(a.status ?? 200, { "Content-Type": "application/json", ...a.headers });
      res.end(a.body ?? "{}");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    base: `http://127.0.0.1:${port}`,
    attempts,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function client(base: string, delays: number[], retriesMax?: number): Payments {
  return new Payments("sk_test_abc", {
    baseUrl: base,
    retriesMax,
    sleep: async (ms) => {
      delays.push(ms);
    },
  });
}

const payment = `{"id":"pay_1","object":"payment","amount":100,"currency":"usd","status":"succeeded"}`;
const visa = { amount: 100, currency: "usd", payment_method: "pm_card_visa" };

test("retries keep one Idempotency-Key and honour Retry-After", async () => {
  const s = await scripted([
    { status: 503, headers: { "Retry-After": "3" }, body: `{"status":503,"code":"service_unavailable"}` },
    { drop: true },
    { status: 429, headers: { "Retry-After": "2" }, body: `{"status":429,"code":"rate_limited"}` },
    { status: 409, body: `{"status":409,"type":"idempotency_error","code":"idempotency_key_in_use"}` },
    { status: 201, body: payment },
  ]);
  try {
    const delays: number[] = [];
    const c = client(s.base, delays, 5);
    const p = await c.payments.create(visa);
    assert.equal(p.id, "pay_1");
    assert.equal(s.attempts.length, 5);
    const key = s.attempts[0]!.key!;
    assert.ok(key.startsWith(IDEMPOTENCY_KEY_PREFIX) && key.length === IDEMPOTENCY_KEY_PREFIX.length + 32, key);
    for (const a of s.attempts) {
      assert.equal(a.key, key);
      assert.equal(a.auth, "Bearer sk_test_abc");
      assert.equal(a.method, "POST");
      assert.deepEqual(JSON.parse(a.body), visa);
    }
    assert.equal(delays.length, 4);
    assert.ok(delays[0]! >= 3000 && delays[2]! >= 2000, `delays ${delays}`);
    await c.payments.create(visa);
    assert.notEqual(s.attempts[5]!.key, key);
  } finally {
    await s.close();
  }
});

test("a caller's key is sent; a GET carries none", async () => {
  const s = await scripted([{ status: 200, body: payment }]);
  try {
    const c = client(s.base, []);
    await c.payments.create(visa, { idempotencyKey: "order-42" });
    await c.payments.retrieve("pay_1");
    assert.equal(s.attempts[0]!.key, "order-42");
    assert.equal(s.attempts[1]!.key, undefined);
    assert.equal(s.attempts[1]!.url, "/v1/payments/pay_1");
  } finally {
    await s.close();
  }
});

test("final answers are not retried and are typed", async () => {
  const cases: [number, string, (e: unknown) => boolean][] = [
    [400, `{"status":400,"type":"invalid_request_error","code":"parameter_invalid","param":"currency"}`,
      (e) => e instanceof InvalidRequestError && e.param === "currency" && e.code === "parameter_invalid"],
    [402, `{"status":402,"code":"card_declined","decline_code":"generic_decline","payment":"pay_9"}`,
      (e) => e instanceof CardError && e.payment === "pay_9" && e.declineCode === "generic_decline" && e.type === "card_error"],
    [409, `{"status":409,"code":"payment_not_capturable"}`, (e) => e instanceof InvalidRequestError && e.status === 409],
    [422, `{"status":422,"code":"idempotency_key_reused"}`, (e) => e instanceof IdempotencyError],
    [401, `{"status":401,"code":"unauthenticated"}`, (e) => e instanceof AuthenticationError],
    [403, `{"status":403,"type":"permission_error","code":"api_key_read_only"}`, (e) => e instanceof PermissionError],
    [404, `not json`, (e) => e instanceof InvalidRequestError && e.status === 404],
  ];
  for (const [status, body, ok] of cases) {
    const s = await scripted([{ status, body, headers: { "Request-Id": "req_1" } }]);
    try {
      const delays: number[] = [];
      const err = await client(s.base, delays).payments.create(visa).then(() => undefined, (e: unknown) => e);
      assert.ok(ok(err), `${status}: ${String(err)}`);
      assert.ok(err instanceof PaymentsError && err.requestId === "req_1", `${status}: ${String(err)}`);
      assert.equal(s.attempts.length, 1, `${status}`);
      assert.equal(delays.length, 0);
    } finally {
      await s.close();
    }
  }
});

test("retries stop at the limit with a typed error; full jitter below the ceiling", async () => {
  const s = await scripted([{ status: 429, body: `{"status":429,"type":"rate_limit_error","code":"rate_limited"}` }]);
  try {
    const delays: number[] = [];
    const c = new Payments("sk_test_abc", { baseUrl: s.base, retriesMax: 4, backoffBaseMs: 100, backoffMaxMs: 1000, sleep: async (ms) => void delays.push(ms) });
    await assert.rejects(c.payments.create(visa), (e: unknown) => e instanceof RateLimitError && e.code === "rate_limited");
    assert.equal(s.attempts.length, 5);
    delays.forEach((d, i) => assert.ok(d >= 0 && d <= Math.min(100 * 2 ** i, 1000), `delay ${i}: ${d}`));
    await assert.rejects(client(s.base, [], 0).payments.create(visa), RateLimitError);
    assert.equal(s.attempts.length, 6);
  } finally {
    await s.close();
  }
});

test("server errors are retried and end as APIError", async () => {
  const s = await scripted([{ status: 500, body: `{"status":500,"code":"internal_error"}` }]);
  try {
    await assert.rejects(client(s.base, [], 2).refunds.retrieve("re_1"), (e: unknown) => e instanceof APIError && e.status === 500);
    assert.equal(s.attempts.length, 3);
  } finally {
    await s.close();
  }
});

test("network errors are retried", async () => {
  const s = await scripted([{ status: 200 }]);
  const base = s.base;
  await s.close(); // nothing listens there any more
  const delays: number[] = [];
  await assert.rejects(client(base, delays, 2).payments.create(visa), (e: unknown) => !(e instanceof PaymentsError));
  assert.equal(delays.length, 2);
});

test("an aborted call stops retrying", async () => {
  const s = await scripted([{ status: 503, headers: { "Retry-After": "60" } }]);
  try {
    const ac = new AbortController();
    const c = new Payments("sk_test_abc", {
      baseUrl: s.base,
      sleep: async () => {
        ac.abort();
        throw ac.signal.reason;
      },
    });
    await assert.rejects(c.payments.create(visa, { signal: ac.signal }));
    assert.equal(s.attempts.length, 1);
  } finally {
    await s.close();
  }
});

test("the constructor refuses bad options", () => {
  assert.throws(() => new Payments("", { baseUrl: "http://127.0.0.1:1" }));
  assert.throws(() => new Payments("sk_test_x", { baseUrl: "" }));
  assert.throws(() => new Payments("sk_test_x", { baseUrl: "http://127.0.0.1:1", retriesMax: 11 }));
  assert.throws(() => new Payments("sk_test_x", { baseUrl: "http://127.0.0.1:1", retriesMax: -1 }));
});

test("list walks every page", async () => {
  const pages: Record<string, string> = {
    "": `{"object":"list","data":[{"id":"pay_5"},{"id":"pay_4"}],"has_more":true}`,
    pay_4: `{"object":"list","data":[{"id":"pay_3"},{"id":"pay_2"}],"has_more":true}`,
    pay_2: `{"object":"list","data":[{"id":"pay_1"}],"has_more":false}`,
  };
  const seen: string[] = [];
  const server = createServer((req, res) => {
    const after = new URL(req.url ?? "/", "http://x").searchParams.get("starting_after") ?? "";
    seen.push(after);
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(pages[after] ?? `{"data":[],"has_more":false}`);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  try {
    const c = client(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, []);
    const ids: string[] = [];
    for await (const p of c.payments.list({ limit: 2 })) ids.push(p.id);
    assert.deepEqual(ids, ["pay_5", "pay_4", "pay_3", "pay_2", "pay_1"]);
    assert.deepEqual(seen, ["", "pay_4", "pay_2"]);
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

function sign(ts: number, body: string, secret: string): string {
  return createHmac("sha256", secret).update(`${ts}.${body}`).digest("hex");
}

test("verifySignature", () => {
  const now = 1_800_000_000;
  const body = `{"id":"evt_1","object":"event","type":"payment.succeeded"}`;
  const ts = now - 10;
  const good = `t=${ts},v1=${sign(ts, body, "whsec_new")}`;
  const rotated = `t=${ts},v1=${sign(ts, body, "whsec_new")},v1=${sign(ts, body, "whsec_old")}`;
  const cases: [string, string, string, string, boolean][] = [
    ["valid", good, "whsec_new", body, true],
    ["rotation, new secret", rotated, "whsec_new", body, true],
    ["rotation, old secret", rotated, "whsec_old", body, true],
    ["other secret", good, "whsec_x", body, false],
    ["changed body", good, "whsec_new", body + " ", false],
    ["no timestamp", `v1=${sign(ts, body, "whsec_new")}`, "whsec_new", body, false],
    ["no signature", `t=${ts}`, "whsec_new", body, false],
    ["not hex", `t=${ts},v1=zz`, "whsec_new", body, false],
    ["too old", `t=${ts - 600},v1=${sign(ts - 600, body, "whsec_new")}`, "whsec_new", body, false],
    ["from the future", `t=${ts + 600},v1=${sign(ts + 600, body, "whsec_new")}`, "whsec_new", body, false],
    ["header too long", good + "," + "x".repeat(SIGNATURE_HEADER_BYTES_MAX), "whsec_new", body, false],
    ["empty header", "", "whsec_new", body, false],
    ["empty secret", good, "", body, false],
  ];
  for (const [name, header, secret, payload, ok] of cases) {
    if (ok) assert.doesNotThrow(() => verifySignature(payload, header, secret, { now }), name);
    else assert.throws(() => verifySignature(payload, header, secret, { now }), SignatureVerificationError, name);
  }
  assert.throws(() => verifySignature(new Uint8Array(PAYLOAD_BYTES_MAX + 1), good, "whsec_new", { now }), SignatureVerificationError);
});

// The client's keys hold no digit, so none can look like a card number,
// which the API refuses in an Idempotency-Key; and they do not repeat.
test("newIdempotencyKey holds no digit", () => {
  const seen = new Set<string>();
  for (let i = 0; i < 10000; i++) {
    const k = newIdempotencyKey();
    assert.match(k, new RegExp(`^${IDEMPOTENCY_KEY_PREFIX}[a-p]{32}$`));
    assert.ok(!seen.has(k), `key ${k} made twice`);
    seen.add(k);
  }
});

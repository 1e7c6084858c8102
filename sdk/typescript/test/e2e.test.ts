import assert from "node:assert/strict";
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import {
  AuthenticationError,
  CardError,
  IdempotencyError,
  InvalidRequestError,
  Payments,
  PaymentsError,
  SIGNATURE_HEADER,
  EVENT_ID_HEADER,
  SignatureVerificationError,
  check,
  constructEvent,
  newIdempotencyKey,
  verifySignature,
  type Payment,
} from "../src/index.js";

// The server that scripts/sdk-e2e.sh started. Without it the test is
// skipped, unless PAYMENTS_SDK_E2E_REQUIRED=1 (as `make test` sets).
const base = process.env.PAYMENTS_SDK_BASE_URL ?? "";
const adminToken = process.env.PAYMENTS_SDK_ADMIN_TOKEN ?? "";
const required = process.env.PAYMENTS_SDK_E2E_REQUIRED === "1";
const live = base !== "" && adminToken !== "";

async function waitFor(what: string, cond: () => Promise<boolean> | boolean): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function failure(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => assert.fail("the call succeeded"),
    (e: unknown) => e,
  );
}

test("required live server", { skip: live || !required ? "a live server is set, or not required" : false }, () => {
  assert.fail("PAYMENTS_SDK_BASE_URL and PAYMENTS_SDK_ADMIN_TOKEN must name a live server");
});

test("end to end against the live server", { skip: live ? false : "no live server: run `make test`, or scripts/sdk-e2e.sh" }, async () => {
  // A tenant of its own, through the admin API and the raw generated client.
  const admin = new Payments(adminToken, { baseUrl: base });
  const tenant = check(await admin.api.POST("/v1/admin/tenants", { body: { name: "SDK e2e (TypeScript)", region: "local" } }));
  const secret = tenant.api_key.secret;
  if (!secret?.startsWith("sk_test_")) assert.fail(`no secret key: ${JSON.stringify(tenant.api_key)}`);
  const c = new Payments(secret, { baseUrl: base });
  const created: string[] = []; // oldest first

  const account = await c.account.retrieve();
  assert.ok(account.id.startsWith("ten_"));

  // Create, then replay with the same key.
  const visa = { amount: 2000, currency: "usd", payment_method: "pm_card_visa", metadata: { order: "A-1" } };
  const key = newIdempotencyKey();
  let first: Response | undefined;
  let second: Response | undefined;
  const p1 = await c.payments.create(visa, { idempotencyKey: key, onResponse: (r) => (first = r) });
  created.push(p1.id);
  assert.ok(p1.id.startsWith("pay_"));
  assert.equal(p1.status, "succeeded");
  assert.equal(p1.amount, 2000);
  assert.ok(first?.headers.get("Request-Id"));
  const p2 = await c.payments.create(visa, { idempotencyKey: key, onResponse: (r) => (second = r) });
  assert.equal(p2.id, p1.id);
  assert.equal(second?.headers.get("Idempotent-Replayed"), "true");
  assert.notEqual(first?.headers.get("Idempotent-Replayed"), "true");
  const reused = await failure(c.payments.create({ ...visa, amount: 2001 }, { idempotencyKey: key }));
  assert.ok(reused instanceof IdempotencyError && reused.code === "idempotency_key_reused", String(reused));

  // Without a key of its own, each call gets a fresh one.
  const p3 = await c.payments.create(visa);
  created.push(p3.id);
  assert.notEqual(p3.id, p1.id);

  // Decline: a typed card error; the payment is kept as failed.
  const declined = await failure(c.payments.create({ amount: 500, currency: "usd", payment_method: "pm_card_chargeDeclined" }));
  assert.ok(declined instanceof CardError, String(declined));
  assert.equal(declined.code, "card_declined");
  assert.equal(declined.type, "card_error");
  assert.equal(declined.status, 402);
  assert.ok(declined.payment && declined.requestId);
  created.push(declined.payment);
  assert.equal((await c.payments.retrieve(declined.payment)).status, "failed");

  // Invalid requests and a bad key are typed too.
  const invalid = await failure(c.payments.create({ amount: 100, currency: "xyz", payment_method: "pm_card_visa" }));
  assert.ok(invalid instanceof InvalidRequestError && invalid.param, String(invalid));
  const missing = await failure(c.payments.retrieve("pay_doesnotexist"));
  assert.ok(missing instanceof InvalidRequestError && missing.status === 404, String(missing));
  const badKey = await failure(new Payments("sk_test_not_a_key", { baseUrl: base }).account.retrieve());
  assert.ok(badKey instanceof AuthenticationError && badKey.status === 401, String(badKey));

  // 3-D Secure: requires_action, the customer completes it, succeeded.
  const p4 = await c.payments.create({ amount: 3000, currency: "eur", payment_method: "pm_card_threeDSecure2Required" });
  created.push(p4.id);
  assert.equal(p4.status, "requires_action");
  const redirect = p4.next_action?.redirect_url;
  assert.ok(redirect, JSON.stringify(p4.next_action));
  await c.payments.completeSandboxAction(redirect);
  await waitFor("the 3-D Secure payment to succeed", async () => (await c.payments.retrieve(p4.id)).status === "succeeded");

  // Manual capture, then a partial refund.
  let p5: Payment = await c.payments.create({ amount: 4000, currency: "usd", payment_method: "pm_card_visa", capture_method: "manual" });
  created.push(p5.id);
  assert.equal(p5.status, "requires_capture");
  assert.equal(p5.amount_capturable, 4000);
  p5 = await c.payments.capture(p5.id);
  assert.equal(p5.status, "succeeded");
  assert.equal(p5.amount_received, 4000);
  const re = await c.refunds.create({ payment: p5.id, amount: 1500 });
  assert.ok(re.id.startsWith("re_"));
  assert.equal(re.amount, 1500);
  assert.equal((await c.payments.retrieve(p5.id)).amount_refunded, 1500);
  const refunds: string[] = [];
  for await (const r of c.refunds.list({ payment: p5.id })) refunds.push(r.id);
  assert.deepEqual(refunds, [re.id]);

  // Every page: more payments, then a walk two by two.
  for (let i = 0; i < 7; i++) created.push((await c.payments.create(visa)).id);
  const listed: string[] = [];
  for await (const p of c.payments.list({ limit: 2 })) listed.push(p.id);
  assert.deepEqual(listed, [...created].reverse());
  let n = 0;
  for await (const _ of c.payments.list({ limit: 2 })) if (++n === 3) break; // breaking out stops the walk

  // Events: newest first, every page.
  const types: string[] = [];
  let firstEvent = "";
  for await (const e of c.events.list({ limit: 2 })) {
    firstEvent ||= e.id;
    types.push(e.type);
  }
  for (const want of ["payment.succeeded", "payment.failed", "refund.succeeded"]) assert.ok(types.includes(want), `events lack ${want}: ${types}`);
  assert.equal((await c.events.retrieve(firstEvent)).id, firstEvent);

  // A webhook endpoint on a loopback receiver, and a real delivery's signature.
  const got: { headers: IncomingHttpHeaders; body: Buffer }[] = [];
  const receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      got.push({ headers: req.headers, body: Buffer.concat(chunks) });
      res.end("ok");
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  try {
    const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`;
    const ep = await c.webhookEndpoints.create({ url, enabled_events: ["payment.succeeded"] });
    const whsec = ep.secret;
    if (!ep.id.startsWith("we_") || !whsec?.startsWith("whsec_")) assert.fail(`endpoint: ${JSON.stringify(ep)}`);
    assert.equal((await c.webhookEndpoints.retrieve(ep.id)).url, url);
    const endpoints: string[] = [];
    for await (const e of c.webhookEndpoints.list()) endpoints.push(e.id);
    assert.deepEqual(endpoints, [ep.id]);

    const p = await c.payments.create({ amount: 1234, currency: "usd", payment_method: "pm_card_visa" });
    let d: { headers: IncomingHttpHeaders; body: Buffer } | undefined;
    await waitFor("the payment's webhook delivery", () => (d = got.find((x) => x.body.toString().includes(p.id))) !== undefined);
    const sig = d!.headers[SIGNATURE_HEADER.toLowerCase()] as string;
    const ev = constructEvent(d!.body, sig, whsec);
    assert.equal(ev.type, "payment.succeeded");
    assert.equal(ev.id, d!.headers[EVENT_ID_HEADER.toLowerCase()]);
    const obj = ev.data.object;
    assert.equal(obj.object, "payment");
    if (obj.object === "payment") {
      assert.equal(obj.id, p.id);
      assert.equal(obj.amount, 1234);
    }
    const tampered = d!.body.toString().replace("1234", "9234");
    assert.throws(() => verifySignature(tampered, sig, whsec), SignatureVerificationError);
    assert.throws(() => verifySignature(d!.body, sig, "whsec_other"), SignatureVerificationError);
    assert.throws(() => verifySignature(d!.body, sig, whsec, { now: Math.floor(Date.now() / 1000) + 3600 }), SignatureVerificationError);

    await c.webhookEndpoints.del(ep.id);
    const gone = await failure(c.webhookEndpoints.retrieve(ep.id));
    assert.ok(gone instanceof PaymentsError && gone.status === 404, String(gone));
    // A budget of one request per second: calls in a row meet 429, and the
    // client waits the server's Retry-After and succeeds.
    const slowTenant = check(
      await admin.api.POST("/v1/admin/tenants", { body: { name: "SDK e2e (TypeScript, slow)", region: "local", rate_limit_per_second: 1, rate_limit_burst: 1 } }),
    );
    const waits: number[] = [];
    const slow = new Payments(slowTenant.api_key.secret ?? "", {
      baseUrl: base,
      sleep: async (ms) => {
        waits.push(ms);
        await new Promise((r) => setTimeout(r, ms));
      },
    });
    for (let i = 0; i < 3; i++) await slow.account.retrieve();
    assert.ok(waits.length > 0 && waits[0]! >= 1000, `waits ${waits}`);
    console.log(`3 calls at 1 request/s: ${waits.length} retries after 429, waits ${waits}`);
    console.log(`listed ${listed.length} payments and ${types.length} events; delivery ${ev.id} verified: ${sig}`);
  } finally {
    await new Promise<void>((resolve) => receiver.close(() => resolve()));
  }
});

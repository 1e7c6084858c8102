import { randomBytes, randomInt } from "node:crypto";

/** How many retries a call may make after its first attempt, by default. */
export const RETRIES_MAX_DEFAULT = 3;
/** The bound of `retriesMax`. */
export const RETRIES_MAX_LIMIT = 10;
/** The first retry's delay ceiling; each retry doubles it (full jitter). */
export const BACKOFF_BASE_MS_DEFAULT = 500;
/** The cap of a retry's delay, Retry-After included. */
export const BACKOFF_MAX_MS_DEFAULT = 20_000;
/** The prefix of the keys the client makes. */
export const IDEMPOTENCY_KEY_PREFIX = "sdk_";

/**
 * newIdempotencyKey answers a fresh key: the prefix and 128 random bits, four
 * to a letter from a to p. The key holds no digit: the API refuses a key that
 * looks like a card number, and a run of hex digits sometimes does.
 */
export function newIdempotencyKey(): string {
  let key = IDEMPOTENCY_KEY_PREFIX;
  for (const b of randomBytes(16)) {
    key += String.fromCharCode(97 + (b >> 4), 97 + (b & 0x0f));
  }
  return key;
}

export interface TransportOptions {
  apiKey: string;
  retriesMax: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  /** Waits between attempts; tests replace it to observe the delays. */
  sleep: (ms: number, signal?: AbortSignal | null) => Promise<void>;
  /** The fetch that sends each attempt; default: the global fetch. */
  fetch: (req: Request) => Promise<Response>;
}

/** retryAfterMs reads Retry-After: delay-seconds or an HTTP date. */
export function retryAfterMs(v: string | null): number {
  if (v === null || v.trim() === "") return 0;
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  const t = Date.parse(v);
  return Number.isNaN(t) ? 0 : Math.max(t - Date.now(), 0);
}

export function sleep(ms: number, signal?: AbortSignal | null): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** delayMs is the wait before retry number attempt+1. */
export function delayMs(o: TransportOptions, attempt: number, afterMs: number): number {
  const ceiling = Math.min(o.backoffBaseMs * 2 ** Math.min(attempt, 30), o.backoffMaxMs);
  const jittered = randomInt(0, Math.max(Math.floor(ceiling), 0) + 1);
  return Math.min(Math.max(jittered, afterMs), o.backoffMaxMs);
}

/** Whether an answer deserves another attempt. */
async function retryable(res: Response): Promise<boolean> {
  if (res.status === 409) {
    // Only the same Idempotency-Key still running is worth waiting for.
    try {
      const body = (await res.clone().json()) as { code?: unknown };
      return body.code === "idempotency_key_in_use";
    } catch {
      return false;
    }
  }
  return res.status === 429 || res.status >= 500;
}

/**
 * makeFetch returns the fetch behind every call: it sets the API key and,
 * on a POST without one, a fresh Idempotency-Key, then retries network
 * errors, 409 in flight, 429 and 5xx after an exponential, jittered delay
 * or the answer's Retry-After, whichever is longer. Every attempt of one
 * call carries the same key, so a retried write happens at most once.
 */
export function makeFetch(o: TransportOptions): (req: Request) => Promise<Response> {
  return async (input: Request): Promise<Response> => {
    const headers = new Headers(input.headers);
    if (!headers.has("Authorization")) headers.set("Authorization", `Bearer ${o.apiKey}`);
    if (input.method === "POST" && !headers.has("Idempotency-Key")) headers.set("Idempotency-Key", newIdempotencyKey());
    const body = input.body === null ? undefined : await input.arrayBuffer();
    const signal = input.signal;
    for (let attempt = 0; ; attempt++) {
      const req = new Request(input.url, { method: input.method, headers, body, signal, redirect: "manual" });
      let res: Response | undefined;
      let err: unknown;
      try {
        res = await o.fetch(req);
      } catch (e) {
        if (signal?.aborted) throw e;
        err = e; // a network error: the Idempotency-Key makes a retry safe
      }
      const again = res === undefined ? true : await retryable(res);
      if (!again || attempt >= o.retriesMax) {
        if (res !== undefined) return res;
        throw err;
      }
      const after = res === undefined ? 0 : retryAfterMs(res.headers.get("Retry-After"));
      await res?.body?.cancel();
      await o.sleep(delayMs(o, attempt, after), signal);
    }
  };
}

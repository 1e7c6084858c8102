import { createHmac, timingSafeEqual } from "node:crypto";
import type { components } from "./schema.gen.js";

/** The header of a delivery's signature: "t=<unix seconds>,v1=<hex HMAC-SHA256>". */
export const SIGNATURE_HEADER = "Payments-Signature";
/** The header of a delivery's event ID, for dropping duplicates. */
export const EVENT_ID_HEADER = "Payments-Event-Id";
/** How far a signature's timestamp may be from now, by default. */
export const SIGNATURE_TOLERANCE_SECONDS_DEFAULT = 300;
/** The bound of the header the verifier parses. */
export const SIGNATURE_HEADER_BYTES_MAX = 4096;
/** The bound of the body the verifier accepts. */
export const PAYLOAD_BYTES_MAX = 1 << 20;

/** Thrown by every verification failure. */
export class SignatureVerificationError extends Error {
  override readonly name = "SignatureVerificationError";
}

export interface VerifyOptions {
  /** Seconds a timestamp may be away from now; default 300. */
  toleranceSeconds?: number;
  /** The current time in Unix seconds; default: the clock. */
  now?: number;
}

/**
 * verifySignature checks a delivery: payload is its raw body (before any
 * JSON parsing), header its Payments-Signature, secret the endpoint's
 * whsec_... secret. The signature is an HMAC-SHA256 of "<t>.<payload>"
 * keyed with the whole secret; one v1 per secret in use (two for 24 hours
 * after a rotation). It throws SignatureVerificationError.
 */
export function verifySignature(payload: string | Uint8Array, header: string | null | undefined, secret: string, opts: VerifyOptions = {}): void {
  const body = typeof payload === "string" ? Buffer.from(payload, "utf8") : Buffer.from(payload);
  if (body.length > PAYLOAD_BYTES_MAX) throw new SignatureVerificationError(`payload of ${body.length} bytes exceeds ${PAYLOAD_BYTES_MAX}`);
  if (!header || header.length > SIGNATURE_HEADER_BYTES_MAX) {
    throw new SignatureVerificationError(`${SIGNATURE_HEADER} header missing or longer than ${SIGNATURE_HEADER_BYTES_MAX} bytes`);
  }
  if (!secret) throw new SignatureVerificationError("empty secret");
  let ts = "";
  const sigs: string[] = [];
  for (const part of header.split(",")) {
    const i = part.indexOf("=");
    if (i < 0) continue;
    const k = part.slice(0, i).trim();
    const v = part.slice(i + 1).trim();
    if (k === "t") ts = v;
    else if (k === "v1") sigs.push(v);
  }
  if (!/^\d{1,12}$/.test(ts)) throw new SignatureVerificationError("no valid t= timestamp");
  const tolerance = opts.toleranceSeconds ?? SIGNATURE_TOLERANCE_SECONDS_DEFAULT;
  const now = opts.now ?? Math.floor(Date.now() / 1000);
  if (Math.abs(now - Number(ts)) > tolerance) {
    throw new SignatureVerificationError(`timestamp ${ts} is ${now - Number(ts)} s away from now, beyond the tolerance of ${tolerance} s`);
  }
  if (sigs.length === 0) throw new SignatureVerificationError("no v1= signature");
  const want = createHmac("sha256", secret).update(`${ts}.`).update(body).digest();
  for (const s of sigs) {
    if (!/^[0-9a-f]{64}$/i.test(s)) continue;
    if (timingSafeEqual(Buffer.from(s, "hex"), want)) return;
  }
  throw new SignatureVerificationError("no v1 signature matches the secret");
}

/** constructEvent verifies a delivery and answers its event. */
export function constructEvent(payload: string | Uint8Array, header: string | null | undefined, secret: string, opts: VerifyOptions = {}): components["schemas"]["Event"] {
  verifySignature(payload, header, secret, opts);
  const text = typeof payload === "string" ? payload : Buffer.from(payload).toString("utf8");
  return JSON.parse(text) as components["schemas"]["Event"];
}

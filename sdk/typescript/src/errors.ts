/** The error classes: the `type` member of an error answer. */
export type ErrorType =
  | "invalid_request_error"
  | "card_error"
  | "idempotency_error"
  | "rate_limit_error"
  | "authentication_error"
  | "permission_error"
  | "api_error";

const errorTypes: ReadonlySet<string> = new Set<ErrorType>([
  "invalid_request_error",
  "card_error",
  "idempotency_error",
  "rate_limit_error",
  "authentication_error",
  "permission_error",
  "api_error",
]);

/**
 * PaymentsError is an error answer of the API (application/problem+json).
 * Every class below extends it: catch by class, then look at `code`.
 */
export class PaymentsError extends Error {
  /** The HTTP status. */
  readonly status: number;
  /** The error class. */
  readonly type: ErrorType;
  /** The stable machine code, such as card_declined. */
  readonly code: string;
  /** The request parameter at fault, when one is. */
  readonly param?: string;
  /** The issuer's reason of a card decline. */
  readonly declineCode?: string;
  /** The ID of the payment that a card error concerns. */
  readonly payment?: string;
  /** Identifies the request in the server's logs. */
  readonly requestId?: string;

  constructor(init: {
    status: number;
    type: ErrorType;
    code: string;
    message: string;
    param?: string;
    declineCode?: string;
    payment?: string;
    requestId?: string;
  }) {
    super(`${init.status} ${init.type}${init.code ? ` (${init.code})` : ""}${init.param ? ` param ${init.param}` : ""}: ${init.message}`);
    this.name = new.target.name;
    this.status = init.status;
    this.type = init.type;
    this.code = init.code;
    this.param = init.param;
    this.declineCode = init.declineCode;
    this.payment = init.payment;
    this.requestId = init.requestId;
  }
}

/** The request was wrong (400, 404, 405, 409, 413, 415). */
export class InvalidRequestError extends PaymentsError {}
/** The card was declined (402); the payment is kept as failed. */
export class CardError extends PaymentsError {}
/** The Idempotency-Key was reused with another request, or is still in use. */
export class IdempotencyError extends PaymentsError {}
/** Too many requests, after the client's retries. */
export class RateLimitError extends PaymentsError {}
/** No valid API key (401). */
export class AuthenticationError extends PaymentsError {}
/** The key may not do this (403). */
export class PermissionError extends PaymentsError {}
/** The server failed (5xx), after the client's retries. */
export class APIError extends PaymentsError {}

const classes: Record<ErrorType, typeof PaymentsError> = {
  invalid_request_error: InvalidRequestError,
  card_error: CardError,
  idempotency_error: IdempotencyError,
  rate_limit_error: RateLimitError,
  authentication_error: AuthenticationError,
  permission_error: PermissionError,
  api_error: APIError,
};

/** The class of an answer that names none (a proxy's, say). */
function classOf(status: number, code: string): ErrorType {
  if (status === 402) return "card_error";
  if (status === 401) return "authentication_error";
  if (status === 403) return "permission_error";
  if (status === 429) return "rate_limit_error";
  if (code.startsWith("idempotency_key")) return "idempotency_error";
  if (status >= 500) return "api_error";
  return "invalid_request_error";
}

function str(v: unknown): string | undefined {
  return typeof v === "string" && v !== "" ? v : undefined;
}

/** errorFrom turns an error answer into its typed error. */
export function errorFrom(status: number, headers: Headers | undefined, body: unknown): PaymentsError {
  const p = (typeof body === "object" && body !== null ? body : {}) as Record<string, unknown>;
  const code = str(p.code) ?? "";
  const named = str(p.type);
  const type: ErrorType = named !== undefined && errorTypes.has(named) ? (named as ErrorType) : classOf(status, code);
  const Class = classes[type];
  return new Class({
    status,
    type,
    code,
    message: str(p.detail) ?? str(p.title) ?? (typeof body === "string" ? body.slice(0, 200) : `HTTP ${status}`),
    param: str(p.param),
    declineCode: str(p.decline_code),
    payment: str(p.payment),
    requestId: str(p.request_id) ?? headers?.get("Request-Id") ?? undefined,
  });
}

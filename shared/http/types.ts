/**
 * The broker's own view of an HTTP exchange, so that `shared/` never imports the Functions
 * programming model. `functions/` adapts HttpRequest/HttpResponseInit to these, and so does the
 * local host through the same adapter.
 */
export interface BrokerRequest {
  method: string;
  url: URL;
  /** Lower-case header names. */
  headers: { get(name: string): string | null };
  params: Record<string, string | undefined>;
  /** Reads the body as text, refusing more than `maxBytes`. */
  text(maxBytes: number): Promise<string>;
  correlationId: string;
}

export interface BrokerResponse {
  status: number;
  headers: Record<string, string>;
  /** Cookies to set (kept apart because a header map cannot repeat Set-Cookie). */
  cookies?: ResponseCookie[];
  body?: string;
}

export interface ResponseCookie {
  name: string;
  value: string;
  path: string;
  maxAgeSeconds: number;
  secure: boolean;
  httpOnly: true;
  sameSite: 'Lax' | 'Strict' | 'None';
}

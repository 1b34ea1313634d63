/**
 * The settings `npm start` (scripts/start.ts) hands the host: the environment over
 * local.settings.json "Values", and, in the sandbox, what the sandbox registers. Pure, so a test can
 * load shared/config.ts from local.settings.sample.json exactly as `npm start` would.
 */
import { existsSync, readFileSync } from 'node:fs';

/** The "Values" of a local.settings.json (`{}` when there is no such file), as `func start` reads them. */
export function readLocalSettings(file: string): Record<string, string> {
  if (!existsSync(file)) return {};
  const parsed = JSON.parse(readFileSync(file, 'utf8')) as { Values?: Record<string, string> };
  return parsed.Values ?? {};
}

/**
 * The environment over local.settings.json. An empty value counts as unset, as shared/config.ts
 * reads it: the sample's `"ENTRA_CLIENT_ID": ""` leaves the sandbox on, and `"PUBLIC_BASE_URL": ""`
 * still gets the sandbox's default.
 */
export function mergeSettings(
  values: Record<string, string>,
  environment: Record<string, string | undefined>,
): Record<string, string | undefined> {
  return Object.fromEntries(
    Object.entries({ ...values, ...environment }).filter(
      (entry): entry is [string, string] => entry[1] !== undefined && entry[1].trim() !== '',
    ),
  );
}

/** `npm start` runs the sandbox when no App Registration is configured. */
export function wantsSandbox(env: Record<string, string | undefined>): boolean {
  return !env.ENTRA_CLIENT_ID;
}

export interface SandboxRegistration {
  /** Port of the local host (BROKER_HOST_PORT). */
  port: number;
  /** The Entra emulator's base URL. */
  authorityHost: string;
  tenantId: string;
  clientId: string;
  clientSecret: string;
  /** The sandbox CA the host must trust (NODE_EXTRA_CA_CERTS). */
  caCertFile: string;
  /** The CONNECT proxy that answers for the Microsoft hosts with the stand-ins. */
  proxyUrl: string;
}

/** The redirect base of the sandbox's app: PUBLIC_BASE_URL when set, else the local host. */
export function sandboxPublicBaseUrl(env: Record<string, string | undefined>, port: number): string {
  return env.PUBLIC_BASE_URL ?? `http://localhost:${port}`;
}

/** What the sandbox sets over the user's settings: its app registration, sign-in host, CA and proxy. */
export function sandboxSettings(
  env: Record<string, string | undefined>,
  sandbox: SandboxRegistration,
): Record<string, string> {
  return {
    ENTRA_TENANT_ID: sandbox.tenantId,
    ENTRA_CLIENT_ID: sandbox.clientId,
    ENTRA_CLIENT_CREDENTIAL: 'secret',
    ENTRA_CLIENT_SECRET: sandbox.clientSecret,
    ENTRA_AUTHORITY_HOST: sandbox.authorityHost,
    PUBLIC_BASE_URL: sandboxPublicBaseUrl(env, sandbox.port),
    BROKER_SANDBOX: 'true',
    BROKER_LOCAL_ADMIN: env.BROKER_LOCAL_ADMIN ?? 'true',
    NODE_EXTRA_CA_CERTS: sandbox.caCertFile,
    // The demo mailboxes answer for outlook.office365.com and graph.microsoft.com through this
    // proxy, as a TLS-inspecting proxy would; loopback (sign-in, storage) stays direct.
    HTTPS_PROXY: sandbox.proxyUrl,
    NO_PROXY: 'localhost,127.0.0.1,::1',
  };
}

/**
 * The sandbox's "start over" line: every place that keeps local state, said together. The
 * connections (in Azurite's folder) and their tokens with the sandbox's tenant (in .broker-local/)
 * go as a pair: deleting only the second leaves connections that look authorized while their
 * tokens and the tenant that issued them are gone.
 */
export function startOverAdvice(places: readonly string[]): string {
  const unique = [...new Set(places)];
  const listed =
    unique.length > 1 ? `${unique.slice(0, -1).join(', ')} and ${unique.at(-1) ?? ''}` : (unique[0] ?? '');
  return `to start over, stop npm start and delete ${listed}`;
}

// @ts-check
/**
 * The baseline for the sweep's CPU figure: the same five round trips a refresh makes, written with
 * nothing but `node:https`/`node:http` and JSON (no MSAL, no Azure SDK pipelines, no broker): a
 * refresh-token redemption at Entra, two Key Vault calls (read the MSAL cache, write the published
 * token: what the sweep's own counters show a refresh makes) and two conditional row writes at Table storage (the claim and the outcome). Same stand-ins,
 * same payload sizes (the template connection's cache and row), same concurrency, own process, so
 * `broker CPU per refresh ÷ this` is what the broker's libraries and code cost on top of the wire.
 * Plain JavaScript for the reason sweep-child.js gives.
 */
'use strict';
const http = require('node:http');
const https = require('node:https');
const { createHmac, randomBytes } = require('node:crypto');
const { performance } = require('node:perf_hooks');

const httpsAgent = new https.Agent({ keepAlive: true });
const httpAgent = new http.Agent({ keepAlive: true });

/**
 * @param {string} method @param {string} url @param {Record<string, string>} headers @param {string} [body]
 * @returns {Promise<{ status: number; headers: import('node:http').IncomingHttpHeaders; body: string }>}
 */
function request(method, url, headers, body) {
  const target = new URL(url);
  const client = target.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = client.request(
      target,
      {
        method,
        headers: {
          ...headers,
          ...(body === undefined ? {} : { 'Content-Length': String(Buffer.byteLength(body)) }),
        },
        agent: target.protocol === 'https:' ? httpsAgent : httpAgent,
      },
      (res) => {
        const chunks = /** @type {Buffer[]} */ ([]);
        res.on('data', (chunk) => chunks.push(chunk));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** @param {{ status: number; body: string }} res @param {number[]} ok @param {string} what */
function expectStatus(res, ok, what) {
  if (!ok.includes(res.status)) throw new Error(`${what}: HTTP ${res.status} ${res.body.slice(0, 300)}`);
}

/** Table storage's SharedKeyLite scheme, as @azure/data-tables signs (x-ms-date + canonical resource). */
function tableClient(/** @type {string} */ connectionString) {
  const parts = Object.fromEntries(
    connectionString
      .split(';')
      .filter(Boolean)
      .map((part) => [part.slice(0, part.indexOf('=')), part.slice(part.indexOf('=') + 1)]),
  );
  const account = parts.AccountName;
  const key = Buffer.from(parts.AccountKey, 'base64');
  const endpoint = parts.TableEndpoint.replace(/\/$/, '');
  /** @param {string} method @param {string} path @param {Record<string, string>} extra @param {object} [json] */
  return (method, path, extra, json) => {
    const url = `${endpoint}${path}`;
    const date = new Date().toUTCString();
    const resource = `/${account}${new URL(url).pathname}`;
    const signature = createHmac('sha256', key).update(`${date}\n${resource}`, 'utf8').digest('base64');
    return request(
      method,
      url,
      {
        'x-ms-date': date,
        'x-ms-version': '2019-02-02',
        DataServiceVersion: '3.0',
        Accept: 'application/json;odata=nometadata',
        'Content-Type': 'application/json',
        Authorization: `SharedKeyLite ${account}:${signature}`,
        ...extra,
      },
      json === undefined ? undefined : JSON.stringify(json),
    );
  };
}

/**
 * @param {{ refreshToken: string; scopes: string[]; cache: string; row: Record<string, unknown>;
 *   iterations: number; concurrency: number }} job
 */
async function run(job) {
  const env = process.env;
  const authority = `${String(env.ENTRA_AUTHORITY_HOST).replace(/\/$/, '')}/${env.ENTRA_TENANT_ID}`;
  const vaultUrl = String(env.KEY_VAULT_URL).replace(/\/$/, '');
  const table = tableClient(String(env.AzureWebJobsStorage));

  // Set-up, not measured: a vault token from the managed-identity endpoint, a table, one row per worker.
  const identity = await request(
    'GET',
    `${env.IDENTITY_ENDPOINT}?resource=${encodeURIComponent('https://vault.azure.net')}&api-version=2019-08-01&client_id=${env.MANAGED_IDENTITY_CLIENT_ID}`,
    { 'X-IDENTITY-HEADER': String(env.IDENTITY_HEADER) },
  );
  expectStatus(identity, [200], 'managed identity');
  const vaultToken = JSON.parse(identity.body).access_token;
  const tableName = `bare${randomBytes(6).toString('hex')}`;
  expectStatus(
    await table('POST', '/Tables', { Prefer: 'return-no-content' }, { TableName: tableName }),
    [204],
    'create table',
  );
  const { PartitionKey: _pk, RowKey: _rk, ...columns } = /** @type {Record<string, unknown>} */ (job.row);
  /** @type {string[]} */
  const etags = [];
  for (let worker = 0; worker < job.concurrency; worker++) {
    const created = await table(
      'POST',
      `/${tableName}`,
      { Prefer: 'return-no-content' },
      { PartitionKey: 'connection', RowKey: `w${worker}`, ...columns },
    );
    expectStatus(created, [204], 'insert row');
    etags.push(String(created.headers.etag));
  }

  const tokenForm = (/** @type {string} */ refreshToken) =>
    new URLSearchParams({
      client_id: String(env.ENTRA_CLIENT_ID),
      client_secret: String(env.ENTRA_CLIENT_SECRET),
      grant_type: 'refresh_token',
      refresh_token: refreshToken,
      scope: job.scopes.join(' '),
    }).toString();
  const putSecret = async (/** @type {string} */ name, /** @type {object} */ body) => {
    const res = await request(
      'PUT',
      `${vaultUrl}/secrets/${name}?api-version=7.5`,
      { Authorization: `Bearer ${vaultToken}`, 'Content-Type': 'application/json' },
      JSON.stringify(body),
    );
    expectStatus(res, [200], `set ${name}`);
  };
  const writeRow = async (/** @type {number} */ worker, /** @type {object} */ fields) => {
    const res = await table(
      'PATCH',
      `/${tableName}(PartitionKey='connection',RowKey='w${worker}')`,
      { 'If-Match': etags[worker] },
      fields,
    );
    expectStatus(res, [204], 'update row');
    etags[worker] = String(res.headers.etag);
  };

  const getSecret = async (/** @type {string} */ name) => {
    const res = await request('GET', `${vaultUrl}/secrets/${name}?api-version=7.5`, {
      Authorization: `Bearer ${vaultToken}`,
    });
    expectStatus(res, [200], `get ${name}`);
    return res;
  };
  for (let worker = 0; worker < job.concurrency; worker++) {
    await putSecret(`bare-${worker}-cache`, { value: job.cache, contentType: 'application/json' });
  }

  let next = 0;
  let roundTrips = 0;
  const worker = async (/** @type {number} */ index) => {
    while (next < job.iterations) {
      next += 1;
      await writeRow(index, { leaseOwner: 'bare', leaseUntil: new Date(Date.now() + 120_000).toISOString() });
      const answer = await request(
        'POST',
        `${authority}/oauth2/v2.0/token`,
        { 'Content-Type': 'application/x-www-form-urlencoded' },
        tokenForm(job.refreshToken),
      );
      expectStatus(answer, [200], 'token');
      const token = JSON.parse(answer.body);
      const expiresOn = new Date(Date.now() + Number(token.expires_in) * 1000);
      JSON.parse(JSON.parse((await getSecret(`bare-${index}-cache`)).body).value);
      await putSecret(`bare-${index}-token`, {
        value: token.access_token,
        contentType: 'text/plain',
        attributes: { exp: Math.floor(expiresOn.getTime() / 1000) },
        tags: { scope: String(token.scope), expiresOn: expiresOn.toISOString() },
      });
      await writeRow(index, {
        ...columns,
        tokenExpiresOn: expiresOn.toISOString(),
        leaseOwner: '',
        leaseUntil: '',
      });
      roundTrips += 5;
    }
  };

  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  await Promise.all(Array.from({ length: job.concurrency }, (_, index) => worker(index)));
  const wallMs = performance.now() - started;
  const cpu = process.cpuUsage(cpuBefore);
  return { refreshes: job.iterations, roundTrips, wallMs, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
}

process.on('message', (/** @type {any} */ job) => {
  run(job).then(
    (result) => process.send?.({ ok: true, result }),
    (/** @type {unknown} */ error) =>
      process.send?.({
        ok: false,
        error: error instanceof Error ? (error.stack ?? error.message) : String(error),
      }),
  );
});
process.send?.({ ready: true });

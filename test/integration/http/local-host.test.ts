import { request as httpRequest, type ClientRequest } from 'node:http';
import { MAX_JSON_BODY_BYTES } from '../../../shared/http/request';
import { startHarness, type Harness } from '../../support/harness';

/**
 * `npm start`'s local host answers some requests itself, before any function runs: those answers
 * are the app's own problem+json (a README anchor in `type`, a correlation id), with the app's one
 * body limit; a client that goes away mid-upload is a log line at info, not a server error.
 */
let harness: Harness;

beforeAll(async () => {
  harness = await startHarness();
}, 60_000);

afterAll(async () => {
  await harness.close();
});

interface Answer {
  status: number;
  contentType: string | undefined;
  json: Record<string, unknown>;
}

/** A request exactly as given (node:http: fetch may not set Host), with `body` written as it is. */
function send(
  method: string,
  path: string,
  options: { headers?: Record<string, string>; body?: Buffer; keepOpen?: boolean } = {},
): { answer: Promise<Answer>; request: ClientRequest } {
  const url = new URL(path, harness.baseUrl);
  let request!: ClientRequest;
  const answer = new Promise<Answer>((resolve, reject) => {
    request = httpRequest(
      {
        host: '127.0.0.1',
        port: url.port,
        method,
        path: url.pathname + url.search,
        headers: { Host: url.host, ...options.headers },
      },
      (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (text += chunk));
        response.on('end', () => {
          resolve({
            status: response.statusCode ?? 0,
            contentType: response.headers['content-type'],
            json: JSON.parse(text) as Record<string, unknown>,
          });
        });
      },
    );
    request.on('error', reject);
    if (options.body) request.write(options.body);
    if (!options.keepOpen) request.end();
  });
  return { answer, request };
}

/** The shape `shared/http/responses.ts` gives every answer of a route. */
function expectAppProblem(answer: Answer, status: number, code: string) {
  expect(answer.status).toBe(status);
  expect(answer.contentType).toBe('application/problem+json; charset=utf-8');
  expect(answer.json).toMatchObject({
    type: `https://github.com/ews-oauth-broker/ews-oauth-broker#error-${code}`,
    status,
    code,
    correlationId: expect.stringMatching(/^[0-9a-f-]{36}$/),
  });
  expect(answer.json.title).not.toBe(code);
}

it('answers an unknown path, a foreign Host and a malformed escape in the app problem+json', async () => {
  const port = new URL(harness.baseUrl).port;
  expectAppProblem(await send('GET', '/api/nope').answer, 404, 'route_not_found');
  expectAppProblem(
    await send('GET', '/api/connections', { headers: { Host: `rebound.example:${port}` } }).answer,
    421,
    'misdirected_request',
  );
  expectAppProblem(await send('GET', '/api/connections/%ZZ').answer, 400, 'invalid_request');
});

it('has one body limit and one message: the host refuses a large body as a route refuses a small excess', async () => {
  const json = { 'Content-Type': 'application/json' };
  const huge = await send('PUT', '/api/connections/big', {
    headers: json,
    body: Buffer.alloc(2 * 1024 * 1024, 0x20),
  }).answer;
  const slightlyOver = await send('PUT', '/api/connections/big', {
    headers: json,
    body: Buffer.alloc(20 * 1024, 0x20),
  }).answer;
  for (const answer of [huge, slightlyOver]) {
    expectAppProblem(answer, 413, 'payload_too_large');
    expect(answer.json.detail).toBe(`The body may be at most ${MAX_JSON_BODY_BYTES} bytes.`);
  }
  expect(await harness.broker.registry.get('big')).toBeUndefined();
});

it('refuses a body that never ends once it passes the limit, without waiting for (or keeping) the rest', async () => {
  const { answer, request } = send('PUT', '/api/connections/endless', {
    headers: { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' },
    body: Buffer.alloc(MAX_JSON_BODY_BYTES + 1024, 0x20),
    keepOpen: true,
  });
  try {
    expectAppProblem(await answer, 413, 'payload_too_large');
  } finally {
    request.destroy();
  }
});

it('regression: a client that aborted its upload was logged as a server error with no path — now info, with method, path and correlation id', async () => {
  const before = harness.logs.length;
  const { answer, request } = send('PUT', '/api/connections/aborted', {
    headers: { 'Content-Type': 'application/json', 'Content-Length': '10000' },
    body: Buffer.from('{"mailbox":'),
    keepOpen: true,
  });
  answer.catch(() => undefined);
  await new Promise((resolve) => setTimeout(resolve, 100));
  request.destroy();
  const logged = () =>
    harness.logs
      .slice(before)
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .filter((entry) => String(entry.event).startsWith('host.'));
  for (let waited = 0; logged().length === 0 && waited < 2000; waited += 20) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  expect(logged()).toEqual([
    expect.objectContaining({
      level: 'info',
      event: 'host.request_aborted',
      method: 'PUT',
      path: '/api/connections/aborted',
      correlationId: expect.stringMatching(/^[0-9a-f-]{36}$/),
    }),
  ]);
  expect(await harness.broker.registry.get('aborted')).toBeUndefined();
});

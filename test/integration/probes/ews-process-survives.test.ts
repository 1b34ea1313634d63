import { spawn } from 'node:child_process';
import type { ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { testPki } from '../../support/pki';

/**
 * Regression: an HTTP 500 with an empty body made ews-javascript-api throw inside a promise
 * callback of its own; the rejection was unhandled and the worker process exited, taking every
 * request in flight with it. Each bad answer below is served to the real library in a process of
 * its own with Node's default handling of unhandled rejections (exit), and the process must live.
 */
const ANSWERS: Record<string, (res: ServerResponse) => void> = {
  '500-empty': (res) => res.writeHead(500, { 'content-length': '0' }).end(),
  '500-html': (res) =>
    res
      .writeHead(500, { 'content-type': 'text/html' })
      .end('<html><body><h1>Server Error</h1></body></html>'),
  '502': (res) => res.writeHead(502, { 'content-type': 'text/plain' }).end('Bad Gateway'),
  '503': (res) => res.writeHead(503, { 'retry-after': '7' }).end(),
  '200-truncated': (res) =>
    res
      .writeHead(200, { 'content-type': 'text/xml; charset=utf-8' })
      .end(
        '<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Bo',
      ),
  '200-garbage': (res) =>
    res.writeHead(200, { 'content-type': 'text/xml' }).end('this is not XML at all <<<'),
  '500-garbage-xml': (res) => res.writeHead(500, { 'content-type': 'text/xml' }).end('<a><b></a>'),
  reset: (res) => res.socket?.destroy(),
};

let server: ReturnType<typeof createServer>;
let url: string;

beforeAll(async () => {
  const pki = testPki();
  server = createServer({ cert: pki.serverCertPem, key: pki.serverKeyPem }, (req, res) => {
    req.resume();
    const name = (req.url ?? '').split('/')[1] ?? '';
    (ANSWERS[name] ?? ((r) => r.writeHead(404).end()))(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `https://127.0.0.1:${String((server.address() as AddressInfo).port)}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

it('regression: one bad EWS answer no longer kills the process; each is a classified result', async () => {
  const child = spawn(
    process.execPath,
    [
      require.resolve('tsx/cli'),
      join(__dirname, '..', '..', 'support', 'ews-probe-child.ts'),
      url,
      ...Object.keys(ANSWERS),
    ],
    { env: process.env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exitCode = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  const lines = stdout
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  expect({ exitCode, crashed: /TypeError|unhandled|^\s+at /im.test(stderr) }).toEqual({
    exitCode: 0,
    crashed: false,
  });
  expect(lines.at(-1)).toEqual({ done: true });
  const byName = Object.fromEntries(lines.filter((l) => l.name).map((l) => [l.name, l.code]));
  expect(byName).toEqual({
    '500-empty': 'upstream_error',
    '500-html': 'upstream_error',
    '502': 'upstream_error',
    '503': 'throttled',
    '200-truncated': 'upstream_error',
    '200-garbage': 'upstream_error',
    '500-garbage-xml': 'upstream_error',
    reset: 'connect_failed',
  });
}, 60_000);

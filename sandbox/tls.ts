import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import forge from 'node-forge';

/** A certificate authority made at run time, and one server certificate it issued for loopback and the Microsoft hosts. */
export interface TestPki {
  /** PEM of the CA certificate: what NODE_EXTRA_CA_CERTS points at. */
  caCertPem: string;
  /** File holding `caCertPem`. */
  caCertFile: string;
  /** Server certificate (PEM) for localhost, 127.0.0.1, ::1, MICROSOFT_SERVICE_HOSTS and DEPENDENCY_HOSTS, signed by the CA. */
  serverCertPem: string;
  serverKeyPem: string;
}

function rsaKeyPair(): { publicKeyPem: string; privateKeyPem: string } {
  // Node's native generator: node-forge's pure-JS RSA generation takes seconds on a slow core.
  const { publicKey, privateKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  return { publicKeyPem: publicKey, privateKeyPem: privateKey };
}

function serialNumber(): string {
  // Positive, 16 bytes: the first nibble kept below 8 so DER does not read it as negative.
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] ?? 0) & 0x7f;
  return bytes.toString('hex');
}

function validity(cert: forge.pki.Certificate, days: number): void {
  const now = Date.now();
  cert.validity.notBefore = new Date(now - 60 * 60 * 1000);
  cert.validity.notAfter = new Date(now + days * 24 * 60 * 60 * 1000);
}

/**
 * The Microsoft 365 hosts the broker's probes address (every cloud), and one on-premises Exchange
 * host name. The sandbox and the tests put
 * their stand-ins behind a CONNECT proxy under these names, so the broker runs exactly as in
 * production behind a TLS-inspecting proxy: real host names, HTTPS_PROXY, NODE_EXTRA_CA_CERTS.
 */
export const MICROSOFT_SERVICE_HOSTS = [
  'outlook.office365.com',
  'outlook.office.com',
  'smtp.office365.com',
  'graph.microsoft.com',
  'outlook.office365.us',
  'smtp.office365.us',
  'graph.microsoft.us',
  'outlook-dod.office365.us',
  'smtp-dod.office365.us',
  'dod-graph.microsoft.us',
  'partner.outlook.cn',
  'smtp.partner.outlook.cn',
  'microsoftgraph.chinacloudapi.cn',
  // An Exchange Server on-premises (hybrid modern authentication) for connections with ewsUrl.
  'mail.contoso.test',
];

/**
 * The broker's other dependencies, under names only the tests' proxy resolves (the proxy test
 * addresses every service through it): Entra ID, a Key Vault, the status webhook's receiver.
 */
export const DEPENDENCY_HOSTS = [
  'login.microsoftonline.com',
  'contoso-broker.vault.azure.net',
  'hooks.contoso.test',
];

function coversHostNames(certPem: string, hostNames: string[]): boolean {
  const cert = forge.pki.certificateFromPem(certPem);
  // A kept set expires (29 days): make a new one a day before rather than fail a TLS handshake.
  if (cert.validity.notAfter.getTime() - Date.now() < 24 * 60 * 60 * 1000) return false;
  const extension: { altNames?: { value?: string }[] } | undefined = cert.getExtension('subjectAltName');
  const names = new Set((extension?.altNames ?? []).flatMap((name) => (name.value ? [name.value] : [])));
  return hostNames.every((name) => names.has(name));
}

/**
 * Makes a CA and a server certificate for loopback and the Microsoft service host names, writes
 * them to `dir` (never into the repository) and returns them. When `dir` already holds a set that
 * covers the names, that set is reused so that every process of a test run (and the sandbox across
 * restarts) trusts the same CA.
 */
export function ensureTestPki(dir: string, extraHostNames: string[] = []): TestPki {
  const files = {
    ca: join(dir, 'ca.pem'),
    cert: join(dir, 'server.pem'),
    key: join(dir, 'server.key'),
  };
  const hostNames = [...MICROSOFT_SERVICE_HOSTS, ...DEPENDENCY_HOSTS, ...extraHostNames];
  if (
    existsSync(files.ca) &&
    existsSync(files.cert) &&
    existsSync(files.key) &&
    coversHostNames(readFileSync(files.cert, 'utf8'), hostNames)
  ) {
    return {
      caCertPem: readFileSync(files.ca, 'utf8'),
      caCertFile: files.ca,
      serverCertPem: readFileSync(files.cert, 'utf8'),
      serverKeyPem: readFileSync(files.key, 'utf8'),
    };
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });

  const caKeys = rsaKeyPair();
  const caPrivate = forge.pki.privateKeyFromPem(caKeys.privateKeyPem);
  const caCert = forge.pki.createCertificate();
  caCert.publicKey = forge.pki.publicKeyFromPem(caKeys.publicKeyPem);
  caCert.serialNumber = serialNumber();
  validity(caCert, 30);
  const caSubject = [
    { name: 'commonName', value: 'ews-oauth-broker test CA (generated, not trusted anywhere else)' },
  ];
  caCert.setSubject(caSubject);
  caCert.setIssuer(caSubject);
  caCert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  caCert.sign(caPrivate, forge.md.sha256.create());

  const serverKeys = rsaKeyPair();
  const serverCert = forge.pki.createCertificate();
  serverCert.publicKey = forge.pki.publicKeyFromPem(serverKeys.publicKeyPem);
  serverCert.serialNumber = serialNumber();
  validity(serverCert, 29);
  serverCert.setSubject([{ name: 'commonName', value: 'localhost' }]);
  serverCert.setIssuer(caSubject);
  serverCert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    {
      name: 'subjectAltName',
      altNames: [
        { type: 2, value: 'localhost' },
        ...hostNames.map((value) => ({ type: 2, value })),
        { type: 7, ip: '127.0.0.1' },
        { type: 7, ip: '::1' },
      ],
    },
  ]);
  serverCert.sign(caPrivate, forge.md.sha256.create());

  const pki: TestPki = {
    caCertPem: forge.pki.certificateToPem(caCert),
    caCertFile: files.ca,
    serverCertPem: forge.pki.certificateToPem(serverCert),
    serverKeyPem: serverKeys.privateKeyPem,
  };
  writeFileSync(files.ca, pki.caCertPem, { mode: 0o600 });
  writeFileSync(files.cert, pki.serverCertPem, { mode: 0o600 });
  writeFileSync(files.key, pki.serverKeyPem, { mode: 0o600 });
  return pki;
}

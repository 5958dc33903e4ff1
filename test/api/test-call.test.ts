import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadConfig } from '../../src/config.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const API_KEY = 'KEYtelnyx-test-secret';
const CREDENTIAL = 'cred-0f1e2d3c';
const NUMBER = '+15550100200';
/** The operator's key (CALLREC_API_KEY): the only one that may mint a test-call token. */
const OPERATOR = randomBytes(32).toString('base64url');

/** A login token shaped like Telnyx's, expiring at `exp` (unix seconds). */
function jwt(exp: number): string {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part({ alg: 'HS512', typ: 'JWT' })}.${part({ aud: 'telnyx_telephony', exp, sub: CREDENTIAL })}.c2lnbmF0dXJl`;
}

/** A local stand-in for Telnyx's API: records each request and answers what the test sets. */
class TelnyxStandIn {
  readonly requests: { method: string; url: string; authorization: string | undefined }[] = [];
  answer: { status: number; body: string } = { status: 201, body: '' };
  readonly #server = http.createServer((req, res) => {
    this.requests.push({ method: req.method!, url: req.url!, authorization: req.headers.authorization });
    res
      .writeHead(this.answer.status, { 'content-type': this.answer.status < 300 ? 'text/plain' : 'application/json' })
      .end(this.answer.body);
  });

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}

interface Body {
  login_token?: string;
  destination?: string;
  expires_at?: string;
  features?: { test_call: boolean };
  error?: { code: string; message: string };
}

async function post(ts: TestServer, secret = OPERATOR): Promise<{ status: number; body: Body }> {
  const res = await fetch(`${ts.server.url}/api/test-call/token`, {
    method: 'POST',
    headers: { authorization: `Bearer ${secret}` },
  });
  return { status: res.status, body: (await res.json()) as Body };
}

describe('POST /api/test-call/token with Telnyx configured', () => {
  const telnyx = new TelnyxStandIn();
  let ts: TestServer;
  beforeAll(async () => {
    const apiUrl = await telnyx.start();
    ts = await startTestServer({
      env: {
        CALLREC_API_KEY: OPERATOR,
        TELNYX_API_KEY: API_KEY,
        TELNYX_CREDENTIAL_ID: CREDENTIAL,
        TELNYX_TEST_NUMBER: NUMBER,
        TELNYX_API_URL: `${apiUrl}/`,
      },
    });
  });
  afterAll(async () => {
    await ts?.close();
    await telnyx.close();
  });

  test('mints a login token from Telnyx for the credential and names the number to dial', async () => {
    const exp = Math.floor(Date.now() / 1000) + 86_400;
    telnyx.answer = { status: 201, body: jwt(exp) };
    const { status, body } = await post(ts);
    expect(status).toBe(200);
    expect(body).toEqual({
      login_token: jwt(exp),
      destination: NUMBER,
      expires_at: new Date(exp * 1000).toISOString(),
    });
    expect(telnyx.requests.at(-1)).toEqual({
      method: 'POST',
      url: `/v2/telephony_credentials/${CREDENTIAL}/token`,
      authorization: `Bearer ${API_KEY}`,
    });
  });

  test('/api/me says the test call is available to the operator, and not to a tenant admin', async () => {
    const me = async (secret: string) =>
      (
        (await (
          await fetch(`${ts.server.url}/api/me`, { headers: { authorization: `Bearer ${secret}` } })
        ).json()) as Body
      ).features;
    expect(await me(OPERATOR)).toEqual({ test_call: true });
    expect(await me(ts.key)).toEqual({ test_call: false });
  });

  test("only the operator key may ask (the token dials on the operator's Telnyx account): a tenant admin, of its tenant or of the operator's, gets 403", async () => {
    const before = telnyx.requests.length;
    await ts.server.store.tenants.ensure('acme', 'Acme');
    const { secret: acmeAdmin } = await ts.server.store.keys.create({
      tenantId: 'acme',
      name: 'acme admin',
      scopes: ['admin'],
    });
    const { secret: listener } = await ts.server.store.keys.create({
      tenantId: ts.tenantId,
      name: 'listener',
      scopes: ['recordings:read'],
    });
    for (const secret of [ts.key, acmeAdmin, listener]) {
      const { status, body } = await post(ts, secret);
      expect(status).toBe(403);
      expect(body.error!.code).toBe('ERR_FORBIDDEN');
    }
    expect(telnyx.requests).toHaveLength(before);
  });

  test('Telnyx refusing is a 502 that says why, without the Telnyx API key', async () => {
    telnyx.answer = {
      status: 401,
      body: JSON.stringify({
        errors: [{ code: '10009', title: 'Authentication failed', detail: 'The API key is invalid.' }],
      }),
    };
    const { status, body } = await post(ts);
    expect(status).toBe(502);
    expect(body.error).toEqual({
      code: 'ERR_UPSTREAM',
      message: `Telnyx refused a login token for credential ${CREDENTIAL} (HTTP 401): The API key is invalid.`,
    });
    expect(JSON.stringify(body)).not.toContain(API_KEY);
  });

  test('an answer that is not a token is a 502', async () => {
    telnyx.answer = { status: 201, body: '<html>maintenance</html>' };
    const { status, body } = await post(ts);
    expect(status).toBe(502);
    expect(body.error).toEqual({ code: 'ERR_UPSTREAM', message: 'Telnyx answered without a login token' });
  });
});

describe('POST /api/test-call/token', () => {
  test('Telnyx unreachable is a 502 naming where it was tried', async () => {
    const gone = new TelnyxStandIn();
    const apiUrl = await gone.start();
    await gone.close();
    const ts = await startTestServer({
      env: {
        CALLREC_API_KEY: OPERATOR,
        TELNYX_API_KEY: API_KEY,
        TELNYX_CREDENTIAL_ID: CREDENTIAL,
        TELNYX_TEST_NUMBER: NUMBER,
        TELNYX_API_URL: apiUrl,
      },
    });
    try {
      const { status, body } = await post(ts);
      expect(status).toBe(502);
      expect(body.error!.code).toBe('ERR_UPSTREAM');
      expect(body.error!.message).toContain(`could not reach Telnyx at ${apiUrl}`);
    } finally {
      await ts.close();
    }
  });

  test('not configured: 404 ERR_NOT_CONFIGURED, and /api/me hides the feature', async () => {
    const ts = await startTestServer({ env: { CALLREC_API_KEY: OPERATOR } });
    try {
      const { status, body } = await post(ts);
      expect(status).toBe(404);
      expect(body.error!.code).toBe('ERR_NOT_CONFIGURED');
      expect(body.error!.message).toContain('TELNYX_API_KEY');
      expect(
        (
          (await (
            await fetch(`${ts.server.url}/api/me`, { headers: { authorization: `Bearer ${OPERATOR}` } })
          ).json()) as Body
        ).features,
      ).toEqual({ test_call: false });
    } finally {
      await ts.close();
    }
  });
});

describe('TELNYX_* configuration', () => {
  const complete = { TELNYX_API_KEY: API_KEY, TELNYX_CREDENTIAL_ID: CREDENTIAL, TELNYX_TEST_NUMBER: NUMBER };

  test("all three set: configured, with Telnyx's API by default", () => {
    expect(loadConfig(complete).telnyx).toEqual({
      apiKey: API_KEY,
      credentialId: CREDENTIAL,
      testNumber: NUMBER,
      apiUrl: 'https://api.telnyx.com',
    });
    expect(loadConfig({}).telnyx).toBeUndefined();
  });

  test.each([
    [{ TELNYX_API_KEY: API_KEY }, 'TELNYX_CREDENTIAL_ID: must be set with TELNYX_API_KEY'],
    [
      { ...complete, TELNYX_API_KEY: '' },
      'TELNYX_API_KEY: must be set with TELNYX_CREDENTIAL_ID and TELNYX_TEST_NUMBER',
    ],
    [
      { ...complete, TELNYX_TEST_NUMBER: '555-0100' },
      'TELNYX_TEST_NUMBER: must be an E.164 number (+15551234567) or a sip: address, got "555-0100"',
    ],
    [
      { ...complete, TELNYX_API_URL: 'ftp://telnyx' },
      'TELNYX_API_URL: must start with http:// or https://, got "ftp://telnyx"',
    ],
  ])('%j is refused naming the variable', (env, message) => {
    expect(() => loadConfig(env)).toThrow(expect.objectContaining({ code: 'ERR_CONFIG', message }));
  });
});

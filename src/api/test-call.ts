import { Type } from 'typebox';
import type { TelnyxConfig } from '../config.js';
import { principalOf } from '../auth/plugin.js';
import { HttpError } from '../errors.js';
import type { ApiDeps, ApiInstance } from './types.js';

/** Telnyx answers in well under a second; past this the dashboard is better told it failed. */
const TELNYX_TIMEOUT_MS = 10_000;

const TestCallTokenResponse = Type.Object({
  login_token: Type.String({ description: 'a Telnyx WebRTC login token (JWT) for @telnyx/webrtc' }),
  destination: Type.String({ description: 'what the browser dials (TELNYX_TEST_NUMBER): it streams to this server' }),
  expires_at: Type.Optional(Type.String({ format: 'date-time' })),
});

const upstream = (message: string) => new HttpError('ERR_UPSTREAM', message);

/** The token's `exp` claim as an ISO time, read without verifying (Telnyx verifies it); undefined if it has none. */
function expiryOf(jwt: string): string | undefined {
  try {
    const { exp } = JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8')) as { exp?: unknown };
    return typeof exp === 'number' ? new Date(exp * 1000).toISOString() : undefined;
  } catch {
    return undefined;
  }
}

/** What Telnyx said was wrong, from its `{"errors": [{"title", "detail"}]}` body when it sent one. */
function telnyxReason(body: string): string {
  try {
    const [first] = (JSON.parse(body) as { errors?: { title?: string; detail?: string }[] }).errors ?? [];
    return first?.detail ?? first?.title ?? '';
  } catch {
    return '';
  }
}

/**
 * Asks Telnyx for a login token for the configured telephony credential (`POST
 * /v2/telephony_credentials/{id}/token`, answered with the JWT as text). One request by
 * `fetch` rather than the `telnyx` SDK: the SDK is a large dependency for one call.
 */
async function mintLoginToken(telnyx: TelnyxConfig): Promise<string> {
  let res: Response;
  try {
    res = await fetch(`${telnyx.apiUrl}/v2/telephony_credentials/${encodeURIComponent(telnyx.credentialId)}/token`, {
      method: 'POST',
      headers: { authorization: `Bearer ${telnyx.apiKey}`, accept: 'text/plain' },
      signal: AbortSignal.timeout(TELNYX_TIMEOUT_MS),
    });
  } catch (err) {
    throw upstream(`could not reach Telnyx at ${telnyx.apiUrl}: ${(err as Error).message}`);
  }
  const body = (await res.text()).trim();
  if (!res.ok) {
    const reason = telnyxReason(body);
    throw upstream(
      `Telnyx refused a login token for credential ${telnyx.credentialId} (HTTP ${res.status})${reason ? `: ${reason}` : ''}`,
    );
  }
  // The JWT comes as plain text; some clients see it JSON-quoted.
  const token = body.replace(/^"|"$/g, '');
  if (!/^[\w-]+\.[\w-]+\.[\w-]+$/.test(token)) throw upstream('Telnyx answered without a login token');
  return token;
}

/**
 * `POST /api/test-call/token`: a short-lived Telnyx login token for the dashboard's browser test
 * call. Operator only: the token logs in as the operator's credential, which dials whatever its
 * outbound profile allows on the operator's account (a tenant admin minting one is toll fraud).
 */
export function testCallRoutes(app: ApiInstance, { telnyx }: ApiDeps): void {
  app.post(
    '/api/test-call/token',
    {
      schema: {
        operationId: 'createTestCallToken',
        summary: 'A Telnyx WebRTC login token and the number to dial, for a test call from the browser',
        response: { 200: TestCallTokenResponse },
      },
      config: { scopes: ['admin'] },
    },
    async (request) => {
      if (!principalOf(request).operator)
        throw new HttpError(
          'ERR_FORBIDDEN',
          "only the operator key may make a test call: it dials on the operator's Telnyx account",
        );
      if (!telnyx) {
        throw new HttpError(
          'ERR_NOT_CONFIGURED',
          'test calls are not configured: set TELNYX_API_KEY, TELNYX_CREDENTIAL_ID and TELNYX_TEST_NUMBER',
        );
      }
      const loginToken = await mintLoginToken(telnyx);
      return { login_token: loginToken, destination: telnyx.testNumber, expires_at: expiryOf(loginToken) };
    },
  );
}

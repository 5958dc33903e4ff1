/**
 * Genesys AudioHook Monitor end to end against a real node: the upgrade's key and RFC 9421
 * signature, the session protocol (open/opened, ping/pong, paused/resumed, discarded,
 * close/closed, disconnect), the probe, and many sessions at once. The signature is built here
 * by hand from RFC 9421 §2.5, not by the library the server verifies with.
 */
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import WebSocket from 'ws';
import { encoderFor } from '../../media/codec.js';
import { HTTP_LIMIT_DEFAULTS } from '../../src/config.js';
import { decodeAudio, findBursts } from '../helpers/audio.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

let ts: TestServer;
beforeAll(async () => {
  ts = await startTestServer();
  await ts.agent('gen-agent', {
    enabled: true,
    auto_record: true,
    consent_prompt: false,
    format: 'wav',
    dual_channel: true,
  });
});
afterAll(() => ts?.close());

const FIELDS = [
  '@request-target',
  '@authority',
  'audiohook-organization-id',
  'audiohook-session-id',
  'audiohook-correlation-id',
  'x-api-key',
];
const PROBE = '00000000-0000-0000-0000-000000000000';
const encode = encoderFor({ codec: 'pcmu', sampleRate: 8000 });

interface SignOptions {
  secret: string;
  created?: number;
  expires?: number;
  nonce?: string;
  /** What the signature covers (default: all Genesys signs). */
  fields?: string[];
}

/** The upgrade headers Genesys sends, signed as RFC 9421 and Genesys's docs describe when `sign` is given. */
function upgradeHeaders(key: string, sign?: SignOptions): Record<string, string> {
  const host = new URL(ts.wsUrl).host;
  const headers: Record<string, string> = {
    'audiohook-organization-id': randomUUID(),
    'audiohook-session-id': randomUUID(),
    'audiohook-correlation-id': randomUUID(),
    'x-api-key': key,
  };
  if (!sign) return headers;
  const now = Math.floor(Date.now() / 1000);
  const created = sign.created ?? now;
  const fields = sign.fields ?? FIELDS;
  const params = `(${fields.map((f) => `"${f}"`).join(' ')});keyid="${key}";nonce="${sign.nonce ?? randomBytes(16).toString('base64url')}";alg="hmac-sha256";created=${created};expires=${sign.expires ?? created + 300}`;
  const values: Record<string, string> = { '@request-target': '/media/genesys', '@authority': host, ...headers };
  const base = [...fields.map((f) => `"${f}": ${values[f]}`), `"@signature-params": ${params}`].join('\n');
  const signature = createHmac('sha256', Buffer.from(sign.secret, 'base64')).update(base).digest('base64');
  return { ...headers, 'signature-input': `sig1=${params}`, signature: `sig1=:${signature}:` };
}

/** The upgrade's outcome: an open socket, or the HTTP refusal with its reason (and `Retry-After`, where sent). */
function connect(
  headers: Record<string, string>,
): Promise<WebSocket | { status: number; reason: string; retryAfter?: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${ts.wsUrl}/media/genesys`, { headers });
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c));
      const retryAfter = res.headers['retry-after'];
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, reason: body, ...(retryAfter !== undefined && { retryAfter }) }),
      );
    });
    ws.once('error', reject);
  });
}

/** One AudioHook client session: numbered messages, and the server's answers in order. */
class Session {
  readonly id = randomUUID();
  #seq = 0;
  readonly received: Array<Record<string, any>> = [];
  readonly #waiters: Array<() => void> = [];
  readonly closed: Promise<number>;

  constructor(readonly ws: WebSocket) {
    ws.on('message', (data, binary) => {
      if (!binary) this.received.push(JSON.parse(data.toString()));
      for (const w of this.#waiters.splice(0)) w();
    });
    this.closed = new Promise((resolve) => ws.on('close', (code) => resolve(code)));
  }

  send(type: string, parameters: object, positionS = 0): void {
    this.ws.send(
      JSON.stringify({
        version: '2',
        id: this.id,
        type,
        seq: ++this.#seq,
        serverseq: this.received.length,
        position: `PT${positionS}S`,
        parameters,
      }),
    );
  }

  open(
    conversationId: string,
    channels = ['external', 'internal'],
    customConfig: object = { agent_id: 'gen-agent' },
  ): void {
    this.send('open', {
      organizationId: randomUUID(),
      conversationId,
      participant: { id: randomUUID(), ani: '+13175550100', aniName: 'Caller', dnis: '+13175550199' },
      media: [
        { type: 'audio', format: 'L16', channels, rate: 16000 },
        { type: 'audio', format: 'PCMU', channels, rate: 8000 },
      ],
      customConfig,
    });
  }

  /** Waits for the server's `n`th message (from 1). */
  async reply(n: number): Promise<Record<string, any>> {
    while (this.received.length < n) await new Promise<void>((resolve) => this.#waiters.push(resolve));
    return this.received[n - 1];
  }
}

/** `ms` of interleaved PCMU in `channels` order, with a tone on a leg from `toneMs` on (1000 Hz caller, 1500 Hz agent). */
function frames(ms: number, channels: string[], tone?: { leg: 'caller' | 'agent'; fromMs: number }): Buffer[] {
  const out: Buffer[] = [];
  for (let f = 0; f < ms / 20; f++) {
    const legs = channels.map((channel) => {
      const leg = channel === 'external' ? 'caller' : 'agent';
      const pcm = new Int16Array(160);
      if (tone?.leg === leg) {
        for (let i = 0; i < 160; i++) {
          const n = f * 160 + i - tone.fromMs * 8;
          if (n >= 0)
            pcm[i] = Math.round(16000 * Math.sin((2 * Math.PI * (leg === 'caller' ? 1000 : 1500) * n) / 8000));
        }
      }
      return encode(pcm);
    });
    const frame = Buffer.alloc(160 * legs.length);
    for (let i = 0; i < frame.length; i++) frame[i] = legs[i % legs.length][Math.floor(i / legs.length)];
    out.push(frame);
  }
  return out;
}

async function audiohookKey(): Promise<{ id: string; key: string; secret: string }> {
  const res = await ts.api('/api/keys', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'genesys', scopes: ['media:stream'], audiohook: true }),
  });
  expect(res.status).toBe(201);
  const body = (await res.json()) as { id: string; secret: string; audiohook_client_secret: string };
  return { id: body.id, key: body.secret, secret: body.audiohook_client_secret };
}

describe('upgrade authentication', () => {
  let signedKey: { id: string; key: string; secret: string };
  beforeAll(async () => {
    signedKey = await audiohookKey();
  });

  test('a key created with audiohook: true carries a client secret of 32 random bytes, shown once', async () => {
    expect(Buffer.from(signedKey.secret, 'base64').length).toBeGreaterThanOrEqual(32);
    const listed = await (await ts.api('/api/keys')).text();
    expect(listed).not.toContain(signedKey.secret);
    // Stored sealed under the master key, not as given.
    const sealed = await ts.server.store.keys.audiohookSecret(signedKey.id);
    expect(sealed).toMatchObject({
      key_id: expect.any(String),
      wrapped_key: expect.any(String),
      ciphertext: expect.any(String),
    });
    expect(JSON.stringify(sealed)).not.toContain(signedKey.secret);
    // A key asked for without one has none.
    const plain = await ts.api('/api/keys', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'twilio', scopes: ['media:stream'] }),
    });
    const body = (await plain.json()) as Record<string, unknown>;
    expect(body.audiohook_client_secret).toBeUndefined();
    expect(await ts.server.store.keys.audiohookSecret(body.id as string)).toBeNull();
  });

  test('a valid signature is let in, and its nonce only once', async () => {
    const headers = upgradeHeaders(signedKey.key, { secret: signedKey.secret });
    const ws = await connect(headers);
    expect(ws).toBeInstanceOf(WebSocket);
    (ws as WebSocket).close();
    expect(await connect(headers)).toEqual({
      status: 401,
      reason: expect.stringMatching(/^ERR_UNAUTHORIZED: .*nonce.*replay/),
    });
  });

  test.each([
    ['unsigned when the key has a secret', () => upgradeHeaders(signedKey.key), /requires a signature/],
    [
      'signed with another secret',
      () => upgradeHeaders(signedKey.key, { secret: randomBytes(32).toString('base64') }),
      /does not verify/,
    ],
    [
      'expired',
      () =>
        upgradeHeaders(signedKey.key, {
          secret: signedKey.secret,
          created: Math.floor(Date.now() / 1000) - 400,
          expires: Math.floor(Date.now() / 1000) - 100,
        }),
      /expired|too old/,
    ],
    [
      'a signature that does not cover the key',
      () =>
        upgradeHeaders(signedKey.key, { secret: signedKey.secret, fields: FIELDS.filter((f) => f !== 'x-api-key') }),
      /required signed fields/,
    ],
    ['no key', () => ({}), /no X-API-KEY/],
    ['an unknown key', () => upgradeHeaders('cr_live_nope'), /unknown/],
  ])('refused with 401 and a reason, recording nothing: %s', async (_what, headers, reason) => {
    expect(await connect(headers())).toEqual({ status: 401, reason: expect.stringMatching(reason) });
  });

  test('a key without a secret needs no signature', async () => {
    const ws = await connect(upgradeHeaders(ts.key));
    expect(ws).toBeInstanceOf(WebSocket);
    (ws as WebSocket).close();
  });

  test('failed keys and signatures spend the address and key prefix the AUTH_FAILURES_PER_IP budget: then 429, even for a valid signature, while other keys get in', async () => {
    const guessed = await audiohookKey();
    const budget = HTTP_LIMIT_DEFAULTS.authFailuresPerIpPerMinute;
    const wrongSecret = () => upgradeHeaders(guessed.key, { secret: randomBytes(32).toString('base64') });
    for (let i = 0; i < budget; i++)
      expect(await connect(wrongSecret())).toEqual({ status: 401, reason: expect.stringMatching(/does not verify/) });
    const limited = {
      status: 429,
      reason: expect.stringMatching(/^ERR_RATE_LIMITED: too many failed authentications .* retry in \d+ s/),
      retryAfter: expect.stringMatching(/^\d+$/),
    };
    expect(await connect(wrongSecret())).toEqual(limited);
    // Refused before any look-up: the right secret too, and keys guessed under the same prefix.
    expect(await connect(upgradeHeaders(guessed.key, { secret: guessed.secret }))).toEqual(limited);
    expect(await connect(upgradeHeaders(`${guessed.key.slice(0, 10)}${randomUUID()}`))).toEqual(limited);
    // Another customer's key from the same address is not affected.
    const other = await connect(upgradeHeaders(signedKey.key, { secret: signedKey.secret }));
    expect(other).toBeInstanceOf(WebSocket);
    (other as WebSocket).close();
  });
});

describe('session protocol', () => {
  test('a probe is answered opened and closed, and records nothing', async () => {
    const s = new Session((await connect(upgradeHeaders(ts.key))) as WebSocket);
    s.open(PROBE);
    expect(await s.reply(1)).toMatchObject({ version: '2', id: s.id, type: 'opened', seq: 1, clientseq: 1 });
    s.send('close', { reason: 'end' });
    expect(await s.reply(2)).toMatchObject({ type: 'closed', seq: 2, clientseq: 2 });
    // A clean end: no disconnect after closed.
    expect(await s.closed).toBe(1000);
    expect(s.received.map((m) => m.type)).toEqual(['opened', 'closed']);
    expect(await ts.server.store.calls.get(ts.tenantId, PROBE)).toBeNull();
  });

  test('opened, pong, pause and resume, discarded audio and close: the recording places each at its true position', async () => {
    const s = new Session((await connect(upgradeHeaders(ts.key))) as WebSocket);
    const callId = randomUUID();
    s.open(callId);
    expect(await s.reply(1)).toMatchObject({
      type: 'opened',
      seq: 1,
      clientseq: 1,
      parameters: { media: [{ format: 'PCMU', rate: 8000, channels: ['external', 'internal'] }] },
    });
    s.send('ping', {});
    expect(await s.reply(2)).toMatchObject({ type: 'pong', seq: 2, clientseq: 2 });
    for (const f of frames(1000, ['external', 'internal'])) s.ws.send(f);
    s.send('paused', {}, 1);
    // Paused for 0.5 s of the call: Genesys's position stands still, the call's clock does not.
    s.send('resumed', { start: 'PT1S', discarded: 'PT0.5S' }, 1);
    for (const f of frames(500, ['external', 'internal'], { leg: 'caller', fromMs: 0 })) s.ws.send(f);
    // 0.2 s that Genesys dropped: a lost span at 2.0 s of the call, the agent's tone right after it.
    s.send('discarded', { start: 'PT1.5S', discarded: 'PT0.2S' }, 1.7);
    for (const f of frames(500, ['external', 'internal'], { leg: 'agent', fromMs: 0 })) s.ws.send(f);
    s.send('close', { reason: 'end' }, 2.2);
    expect(await s.reply(3)).toMatchObject({ type: 'closed', seq: 3, clientseq: 6 });
    s.ws.close();
    const rec = await ts.recording(callId);
    expect(rec.status).toBe('ready');
    expect(rec.lostSpans).toEqual([{ start_ms: 2000, end_ms: 2200, reason: 'discarded by the platform' }]);
    const call = await ts.server.store.calls.get(ts.tenantId, callId);
    expect(call).toMatchObject({
      provider: 'genesys',
      agentId: 'gen-agent',
      pauses: [{ paused_at_ms: 1000, resumed_at_ms: 1500, behavior: 'silence' }],
    });
    const audio = await decodeAudio(
      new Uint8Array(await (await ts.api(`/api/calls/${callId}/recording`)).arrayBuffer()),
      'wav',
    );
    const caller = findBursts(audio.channels[0], 8000, 1000);
    const agent = findBursts(audio.channels[1], 8000, 1500);
    expect(caller).toHaveLength(1);
    expect(agent).toHaveLength(1);
    expect(Math.abs(caller[0].startMs - 1500)).toBeLessThanOrEqual(1);
    expect(Math.abs(agent[0].startMs - 2200)).toBeLessThanOrEqual(1);
  });

  test('a pause asked through the API is asked of Genesys: pause, then resume once Genesys resumes, placed where its audio goes on', async () => {
    const s = new Session((await connect(upgradeHeaders(ts.key))) as WebSocket);
    const callId = randomUUID();
    const control = (action: string) =>
      ts
        .api(`/api/calls/${callId}/recording`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ action }),
        })
        .then((r) => r.json() as Promise<{ recording_status: string }>);
    s.open(callId);
    await s.reply(1);
    for (const f of frames(1000, ['external', 'internal'])) s.ws.send(f);
    // The pong comes once every frame before the ping has been read: the pause is at 1 s.
    s.send('ping', {}, 1);
    await s.reply(2);
    expect(await control('pause')).toMatchObject({ recording_status: 'paused' });
    expect(await s.reply(3)).toMatchObject({ type: 'pause', seq: 3, clientseq: 2, parameters: {} });
    s.send('paused', {}, 1);
    // The pong: `paused` has been read. Genesys holds the stream paused until asked to resume, the recording with it.
    s.send('ping', {}, 1);
    await s.reply(4);
    expect(await control('resume')).toMatchObject({ recording_status: 'paused' });
    expect(await s.reply(5)).toMatchObject({ type: 'resume', seq: 5, clientseq: 4 });
    s.send('resumed', { start: 'PT1S', discarded: 'PT0.8S' }, 1);
    for (const f of frames(400, ['external', 'internal'], { leg: 'agent', fromMs: 0 })) s.ws.send(f);
    s.send('close', { reason: 'end' }, 1.4);
    expect(await s.reply(6)).toMatchObject({ type: 'closed', seq: 6, clientseq: 6 });
    s.ws.close();
    await ts.recording(callId);
    const call = await ts.server.store.calls.get(ts.tenantId, callId);
    expect(call?.pauses).toEqual([
      { paused_at_ms: 1000, resumed_at_ms: 1800, behavior: 'silence', recording_offset_ms: 1000 },
    ]);
    const audio = await decodeAudio(
      new Uint8Array(await (await ts.api(`/api/calls/${callId}/recording`)).arrayBuffer()),
      'wav',
    );
    expect(findBursts(audio.channels[1], 8000, 1500).map((b) => Math.round(b.startMs))).toEqual([1800]);
  });

  test('an unknown agent: disconnect, reason unauthorized, before the socket closes', async () => {
    const s = new Session((await connect(upgradeHeaders(ts.key))) as WebSocket);
    s.open(randomUUID(), ['external'], { agent_id: 'nobody' });
    expect(await s.reply(1)).toMatchObject({ type: 'opened' });
    expect(await s.reply(2)).toMatchObject({
      type: 'disconnect',
      seq: 2,
      clientseq: 1,
      parameters: { reason: 'unauthorized', info: expect.stringMatching(/^ERR_UNKNOWN_AGENT/) },
    });
    expect(await s.closed).toBe(1008);
  });

  test('20 sessions at once, channels in either order: each recording has its caller left and its agent right', async () => {
    const calls = Array.from({ length: 20 }, (_, i) => ({
      callId: randomUUID(),
      channels: i % 2 ? ['internal', 'external'] : ['external', 'internal'],
    }));
    await Promise.all(
      calls.map(async ({ callId, channels }) => {
        const s = new Session((await connect(upgradeHeaders(ts.key))) as WebSocket);
        s.open(callId, channels);
        await s.reply(1);
        for (const f of frames(600, channels, { leg: 'caller', fromMs: 100 })) s.ws.send(f);
        for (const f of frames(400, channels, { leg: 'agent', fromMs: 100 })) s.ws.send(f);
        s.send('close', { reason: 'end' }, 1);
        expect(await s.reply(2)).toMatchObject({ type: 'closed' });
        s.ws.close();
      }),
    );
    for (const { callId } of calls) {
      await ts.recording(callId);
      const audio = await decodeAudio(
        new Uint8Array(await (await ts.api(`/api/calls/${callId}/recording`)).arrayBuffer()),
        'wav',
      );
      expect(findBursts(audio.channels[0], 8000, 1000).map((b) => Math.round(b.startMs))).toEqual([100]);
      expect(findBursts(audio.channels[1], 8000, 1500).map((b) => Math.round(b.startMs))).toEqual([700]);
    }
  });
});

describe('a conversation, consent, and the cluster', () => {
  /** One whole session: open, `ms` of audio with a caller tone from `toneMs`, close. */
  async function stream(conversationId: string, ms: number, toneMs: number, agentId = 'gen-agent'): Promise<void> {
    const s = new Session((await connect(upgradeHeaders(ts.key))) as WebSocket);
    s.open(conversationId, ['external', 'internal'], { agent_id: agentId });
    await s.reply(1);
    for (const f of frames(ms, ['external', 'internal'], { leg: 'caller', fromMs: toneMs })) s.ws.send(f);
    s.send('close', { reason: 'end' }, ms / 1000);
    expect(await s.reply(2)).toMatchObject({ type: 'closed' });
    s.ws.close();
    await s.closed;
  }

  test("a conversation streamed in several sessions (transfers) keeps every session's audio: <id>, <id>-2, …", async () => {
    const conversationId = randomUUID();
    await stream(conversationId, 600, 100);
    await stream(conversationId, 600, 300);
    await stream(conversationId, 600, 200);
    const onsets = [];
    for (const callId of [conversationId, `${conversationId}-2`, `${conversationId}-3`]) {
      expect((await ts.recording(callId)).status).toBe('ready');
      const audio = await decodeAudio(
        new Uint8Array(await (await ts.api(`/api/calls/${callId}/recording`)).arrayBuffer()),
        'wav',
      );
      onsets.push(findBursts(audio.channels[0], 8000, 1000).map((b) => Math.round(b.startMs)));
    }
    expect(onsets).toEqual([[100], [300], [200]]);
  });

  test('a due consent prompt cannot be played on AudioHook Monitor: fail closed, nothing recorded', async () => {
    await ts.agent('gen-consent', { enabled: true, auto_record: true, consent_prompt: true });
    const conversationId = randomUUID();
    await stream(conversationId, 400, 100, 'gen-consent');
    // The call row is final once the session has ended it.
    let call = await ts.server.store.calls.get(ts.tenantId, conversationId);
    while (call?.status !== 'ended') {
      await new Promise((resolve) => setTimeout(resolve, 20));
      call = await ts.server.store.calls.get(ts.tenantId, conversationId);
    }
    expect(call?.consent).toMatchObject({ outcome: 'failed', reason: expect.stringContaining('one-way') });
    expect(await ts.server.store.recordings.getByCall(ts.tenantId, conversationId)).toBeNull();
  });

  test('a nonce spent on one node is refused by another node of the cluster', async () => {
    const other = await startTestServer({ join: ts });
    try {
      const { key, secret } = await audiohookKey();
      const headers = upgradeHeaders(key, { secret });
      const ws = (await connect(headers)) as WebSocket;
      ws.close();
      const replay = await new Promise<{ status: number; reason: string }>((resolve) => {
        const again = new WebSocket(`${other.wsUrl}/media/genesys`, {
          headers: { ...headers, host: new URL(ts.wsUrl).host },
        });
        again.once('unexpected-response', (_req, res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, reason: body }));
        });
        again.once('open', () => resolve({ status: 101, reason: '' }));
      });
      expect(replay).toEqual({ status: 401, reason: expect.stringMatching(/replay/) });
    } finally {
      await other.close();
    }
  });
});

test('a stream Genesys holds paused is not idle: it outlives STREAM_IDLE_TIMEOUT_SECONDS and records on', async () => {
  const idle = await startTestServer({ env: { STREAM_IDLE_TIMEOUT_SECONDS: '1' } });
  try {
    await idle.agent('gen-agent', { enabled: true, auto_record: true, consent_prompt: false });
    const ws = new WebSocket(`${idle.wsUrl}/media/genesys`, { headers: { 'x-api-key': idle.key } });
    await new Promise((resolve, reject) => (ws.once('open', resolve), ws.once('error', reject)));
    const s = new Session(ws);
    const callId = randomUUID();
    s.open(callId);
    await s.reply(1);
    for (const f of frames(200, ['external', 'internal'])) ws.send(f);
    s.send('paused', {}, 0.2);
    // Two idle timeouts pass with no audio: the pause is the provider's, not a dead stream.
    await new Promise((resolve) => setTimeout(resolve, 2500));
    s.send('resumed', { start: 'PT0.2S', discarded: 'PT2.5S' }, 0.2);
    for (const f of frames(200, ['external', 'internal'])) ws.send(f);
    s.send('close', { reason: 'end' }, 0.4);
    expect(await s.reply(2)).toMatchObject({ type: 'closed' });
    expect(await s.closed).toBe(1000);
    expect(await idle.recording(callId)).toMatchObject({ status: 'ready' });
    expect((await idle.server.store.calls.get(idle.tenantId, callId))?.endReason).toBe('provider stop');
  } finally {
    await idle.close();
  }
});

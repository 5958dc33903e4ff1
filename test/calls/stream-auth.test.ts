import { AuthFailures } from '../../src/auth/failures.js';
import { EgressPolicy } from '../../src/net/egress.js';
import { CallRegistry } from '../../src/calls/registry.js';
import type { CallSession } from '../../src/calls/session.js';
import { authenticateStream, claimCall, type StreamIdentity, type StreamUpgrade } from '../../src/calls/stream-auth.js';
import type { StreamStart } from '../../src/protocols/types.js';
import { createTestStore, type TestStore } from '../helpers/db.js';

let db: TestStore;
let token: string;
const NO_QUERY: StreamUpgrade = { headers: {}, query: {}, address: '192.0.2.1' };
/** These tests fail authentication often from one address: a budget they never spend. */
const UNLIMITED = new AuthFailures(1_000_000);
const RUNTIME = 'ws://runtime.example/agent';
const egress = new EgressPolicy();

beforeAll(async () => {
  db = await createTestStore('sqlite');
  await db.store.tenants.ensure('t1', 'Tenant one');
  token = (await db.store.keys.create({ tenantId: 't1', name: 'stream', scopes: ['media:stream'] })).secret;
  await db.store.agents.patch('t1', 'plain', { voice_tools: { call_recording: { enabled: true } } }, null);
  await db.store.agents.patch(
    't1',
    'bridged',
    { voice_tools: { call_recording: { enabled: true, agent_ws_url: RUNTIME } } },
    null,
  );
  await db.store.agents.patch(
    't1',
    'listed',
    {
      voice_tools: {
        call_recording: { enabled: true, agent_ws_urls: ['wss://other.example/x', 'wss://third.example/'] },
      },
    },
    null,
  );
});
afterAll(() => db.cleanup());

function start(params: Record<string, string>, extra: Partial<StreamStart> = {}): StreamStart {
  return {
    params: { token, ...params },
    format: { codec: 'pcmu', sampleRate: 8000 },
    legs: ['caller'],
    providerCallId: 'CA1',
    streamId: 'MZ1',
    ...extra,
  };
}

describe('authenticateStream', () => {
  test.each([
    ['no agent_id', {}, 'ERR_MISSING_AGENT'],
    ['no token', { agent_id: 'plain', token: '' }, 'ERR_BAD_TOKEN'],
    ['an unknown token', { agent_id: 'plain', token: 'cr_nope' }, 'ERR_BAD_TOKEN'],
    ['an unknown agent', { agent_id: 'ghost' }, 'ERR_UNKNOWN_AGENT'],
    [
      'an agent_url that is not a WebSocket',
      { agent_id: 'plain', agent_url: 'http://runtime.example' },
      'ERR_BAD_PARAMETER',
    ],
    [
      'an agent_url its agent does not list',
      { agent_id: 'bridged', agent_url: 'ws://127.0.0.1:9/latest/meta-data/' },
      'ERR_EGRESS_REFUSED',
    ],
    [
      'an agent_url when its agent lists none',
      { agent_id: 'plain', agent_url: 'wss://other.example/x' },
      'ERR_EGRESS_REFUSED',
    ],
    ['mode=bridge with no runtime named', { agent_id: 'plain', mode: 'bridge' }, 'ERR_NO_RUNTIME'],
    ['an unknown mode', { agent_id: 'bridged', mode: 'both' }, 'ERR_BAD_PARAMETER'],
    ['an agent_id outside the id rule', { agent_id: '../plain' }, 'ERR_BAD_PARAMETER'],
    ['a call_id of ..', { agent_id: 'plain', call_id: '..' }, 'ERR_BAD_PARAMETER'],
    ['a call_id with a slash', { agent_id: 'plain', call_id: 'a/b' }, 'ERR_BAD_PARAMETER'],
  ])('refuses a stream with %s', async (_name, params, code) => {
    await expect(
      authenticateStream({ store: db.store, authFailures: UNLIMITED, egress }, NO_QUERY, start(params)),
    ).rejects.toMatchObject({ code });
  });

  test('refuses a key without the media:stream scope', async () => {
    const reader = (await db.store.keys.create({ tenantId: 't1', name: 'reader', scopes: ['recordings:read'] })).secret;
    await expect(
      authenticateStream(
        { store: db.store, authFailures: UNLIMITED, egress },
        NO_QUERY,
        start({ agent_id: 'plain', token: reader }),
      ),
    ).rejects.toMatchObject({ code: 'ERR_BAD_TOKEN' });
  });

  test('only failures are limited, per address and token prefix: a failing token is refused past its budget until its window ends; a valid one always gets in', async () => {
    const ctx = { store: db.store, authFailures: new AuthFailures(2, 300), egress };
    const from = (address: string) => ({ ...NO_QUERY, address });
    const wrong = start({ agent_id: 'plain', token: 'crk_wrong' });
    for (const code of ['ERR_BAD_TOKEN', 'ERR_BAD_TOKEN', 'ERR_RATE_LIMITED', 'ERR_RATE_LIMITED']) {
      await expect(authenticateStream(ctx, from('198.51.100.1'), wrong)).rejects.toMatchObject({ code });
    }
    await expect(authenticateStream(ctx, from('198.51.100.1'), wrong)).rejects.toMatchObject({
      code: 'ERR_RATE_LIMITED',
      message: expect.stringMatching(/retry in 1 s$/),
    });
    await expect(authenticateStream(ctx, from('198.51.100.1'), start({ agent_id: 'plain' }))).resolves.toMatchObject({
      agentId: 'plain',
    });
    await expect(
      authenticateStream(ctx, from('198.51.100.1'), start({ agent_id: 'plain', token: 'crk_other' })),
    ).rejects.toMatchObject({ code: 'ERR_BAD_TOKEN' });
    await expect(authenticateStream(ctx, from('198.51.100.2'), wrong)).rejects.toMatchObject({ code: 'ERR_BAD_TOKEN' });
    await new Promise((resolve) => setTimeout(resolve, 350));
    await expect(authenticateStream(ctx, from('198.51.100.1'), wrong)).rejects.toMatchObject({ code: 'ERR_BAD_TOKEN' });
  });

  test('reads parameters from the query string too; the start message wins', async () => {
    const identity = await authenticateStream(
      { store: db.store, authFailures: UNLIMITED, egress },
      { headers: {}, query: { agent_id: 'ghost', call_id: 'from-query', token }, address: '192.0.2.1' },
      start({ agent_id: 'plain' }),
    );
    expect(identity).toMatchObject({ tenantId: 't1', agentId: 'plain', callId: 'from-query' });
    expect(identity.settings.enabled).toBe(true);
  });

  test.each([
    [{ call_id: 'mine' }, {}, 'mine'],
    [{}, {}, 'CA1'],
    [{}, { providerCallId: undefined }, 'MZ1'],
  ])(
    'call id: the call_id parameter, else the provider call id, else the stream id (%o %o)',
    async (params, extra, callId) => {
      expect(
        (
          await authenticateStream(
            { store: db.store, authFailures: UNLIMITED, egress },
            NO_QUERY,
            start({ agent_id: 'plain', ...params }, extra),
          )
        ).callId,
      ).toBe(callId);
    },
  );

  test('call id: a fresh UUID when the provider names neither call nor stream', async () => {
    const identity = await authenticateStream(
      { store: db.store, authFailures: UNLIMITED, egress },
      NO_QUERY,
      start({ agent_id: 'plain' }, { providerCallId: undefined, streamId: undefined }),
    );
    expect(identity.callId).toMatch(/^[0-9a-f-]{36}$/);
  });

  // SPEC §4, the same on every provider: a bridge when a runtime is named and the stream can
  // carry audio back; `mode=` forces either; `bidirectional=` overrides what the start says.
  test.each([
    // agent, start says it can send audio, extra parameters → mode, runtime, can play audio
    ['plain', true, {}, 'fork', null, true],
    ['plain', undefined, {}, 'fork', null, true],
    ['plain', false, {}, 'fork', null, false],
    ['bridged', true, {}, 'bridge', RUNTIME, true],
    ['bridged', undefined, {}, 'bridge', RUNTIME, true],
    ['bridged', false, {}, 'fork', null, false],
    ['bridged', false, { bidirectional: 'true' }, 'bridge', RUNTIME, true],
    ['bridged', true, { bidirectional: 'false' }, 'fork', null, false],
    ['listed', undefined, { agent_url: 'wss://other.example/x' }, 'bridge', 'wss://other.example/x', true],
    ['listed', undefined, { agent_url: 'wss://THIRD.example' }, 'bridge', 'wss://THIRD.example', true],
    ['listed', undefined, {}, 'fork', null, true],
    ['bridged', undefined, { agent_url: RUNTIME }, 'bridge', RUNTIME, true],
    ['bridged', true, { mode: 'fork' }, 'fork', null, true],
    ['bridged', false, { mode: 'bridge' }, 'bridge', RUNTIME, true],
  ] as const)(
    'agent %s, canSendAudio %s, %o → %s',
    async (agentId, canSendAudio, params, mode, runtimeUrl, canPlayAudio) => {
      const identity = await authenticateStream(
        { store: db.store, authFailures: UNLIMITED, egress },
        NO_QUERY,
        start({ agent_id: agentId, ...params }, { canSendAudio }),
      );
      expect(identity).toMatchObject({ mode, runtimeUrl, canPlayAudio });
    },
  );
});

describe('claimCall', () => {
  const ctx = (perTenant: number | null = null) => ({
    store: db.store,
    registry: new CallRegistry(),
    nodeId: 'node-1',
    limits: { perTenant },
  });
  const owner = {} as CallSession;

  async function identity(callId: string, params: Record<string, string> = {}): Promise<StreamIdentity> {
    return authenticateStream(
      { store: db.store, authFailures: UNLIMITED, egress },
      NO_QUERY,
      start({ agent_id: 'bridged', call_id: callId, ...params }),
    );
  }

  test('claims the call on this node and creates its row; a bridge records both legs', async () => {
    const c = ctx();
    const claim = claimCall(c, owner, 'telnyx', start({}), await identity('claim-1'));
    expect(c.registry.get('t1', 'claim-1')).toBe(owner);
    await claim.created;
    expect(await db.store.calls.get('t1', 'claim-1')).toMatchObject({
      status: 'live',
      provider: 'telnyx',
      mode: 'bridge',
      legs: ['caller', 'agent'],
      streamId: 'MZ1',
      nodeId: 'node-1',
      agentId: 'bridged',
    });
  });

  test('a fork records the legs the stream carries', async () => {
    const claim = claimCall(ctx(), owner, 'twilio', start({}), await identity('claim-fork', { mode: 'fork' }));
    await claim.created;
    expect(await db.store.calls.get('t1', 'claim-fork')).toMatchObject({ mode: 'fork', legs: ['caller'] });
  });

  test('a call another stream on this node holds is refused at once', async () => {
    const c = ctx();
    const id = await identity('claim-2');
    await claimCall(c, owner, 'twilio', start({}), id).created;
    expect(() => claimCall(c, {} as CallSession, 'twilio', start({}), id)).toThrow(
      expect.objectContaining({ code: 'ERR_CALL_EXISTS' }),
    );
    expect(c.registry.get('t1', 'claim-2')).toBe(owner);
  });

  test('a call streamed before (its row exists) is refused, and its registry entry released', async () => {
    const id = await identity('claim-3');
    await claimCall(ctx(), owner, 'twilio', start({}), id).created;
    const again = ctx();
    const claim = claimCall(again, owner, 'twilio', start({}), id);
    await expect(claim.created).rejects.toMatchObject({
      code: 'ERR_CALL_EXISTS',
      message: expect.stringContaining('already streamed'),
    });
    expect(again.registry.size).toBe(0);
  });

  test('a tenant holding MAX_STREAMS_PER_TENANT streams on this node is refused another, until one ends', async () => {
    const c = ctx(2);
    const first = await identity('cap-1');
    await claimCall(c, owner, 'twilio', start({}), first).created;
    await claimCall(c, owner, 'twilio', start({}), await identity('cap-2')).created;
    const third = await identity('cap-3');
    expect(() => claimCall(c, owner, 'twilio', start({}), third)).toThrow(
      expect.objectContaining({ code: 'ERR_TENANT_STREAM_LIMIT' }),
    );
    expect(c.registry.countOf('t1')).toBe(2);
    c.registry.delete('t1', 'cap-1', owner);
    await claimCall(c, owner, 'twilio', start({}), third).created;
    expect(c.registry.countOf('t1')).toBe(2);
  });

  test('with MAX_STREAMS_PER_TENANT off (the default) a tenant is not capped: 600 claims, over the old default of 500', async () => {
    const c = ctx();
    const id = await identity('uncapped');
    const claims = Array.from({ length: 600 }, (_, i) =>
      claimCall(c, {} as CallSession, 'twilio', start({}), { ...id, callId: `uncapped-${i}` }),
    );
    expect(c.registry.countOf('t1')).toBe(600);
    await Promise.all(claims.map((claim) => claim.created));
  });
});

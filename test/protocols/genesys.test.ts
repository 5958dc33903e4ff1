import { adapters, AUDIOHOOK_KEY_HEADER } from '../../src/protocols/index.js';
import type { ProviderAdapter, ProviderEvent, WireMessage } from '../../src/protocols/types.js';
import { code } from './kits.js';

const SESSION = '30b0e395-84d3-4570-ac13-9a62d8f514c0';
const CONVERSATION = '090eaa2f-72fa-480a-83e0-8667ff89c0ec';
const upgrade = { headers: { [AUDIOHOOK_KEY_HEADER]: 'cr_key' }, query: {} };

/** Client messages numbered as Genesys numbers them. */
function client() {
  let seq = 0;
  return (type: string, parameters: object = {}, extra: object = {}) =>
    Buffer.from(
      JSON.stringify({
        version: '2',
        id: SESSION,
        type,
        seq: ++seq,
        serverseq: 0,
        position: 'PT0S',
        parameters,
        ...extra,
      }),
    );
}

const offer = (channels: string[], format = 'PCMU', rate = 8000) => ({ type: 'audio', format, channels, rate });
const openParams = (media: object[], conversationId = CONVERSATION) => ({
  organizationId: 'd7934305-0972-4844-938e-9060eef73d05',
  conversationId,
  participant: {
    id: '883efee8-3d6c-4537-b500-6d7ca4b92fa0',
    ani: '+15555551234',
    aniName: 'John Doe',
    dnis: '+18005556789',
  },
  media,
  customConfig: { agent_id: 'agent-7', priority: 3 },
});

const json = (m: WireMessage | null | undefined) => JSON.parse(m!.data as string);

function opened(channels = ['external', 'internal']): {
  adapter: ProviderAdapter;
  send: ReturnType<typeof client>;
  start: ProviderEvent;
} {
  const adapter = adapters.genesys(upgrade);
  const send = client();
  const start = adapter.parseProviderMessage(send('open', openParams([offer(channels)])), false);
  return { adapter, send, start };
}

describe('genesys adapter (AudioHook v2)', () => {
  test('open: the first format callrec records is chosen and answered opened; the conversation is the call, Custom Config the params, X-API-KEY the token', () => {
    const adapter = adapters.genesys(upgrade);
    const send = client();
    const event = adapter.parseProviderMessage(
      send(
        'open',
        openParams([
          offer(['external', 'internal'], 'L16', 16000),
          offer(['internal']),
          offer(['external', 'internal']),
        ]),
      ),
      false,
    );
    expect(event).toMatchObject({
      type: 'start',
      start: {
        providerCallId: CONVERSATION,
        streamId: SESSION,
        params: { agent_id: 'agent-7', priority: '3', token: 'cr_key' },
        format: { codec: 'pcmu', sampleRate: 8000 },
        legs: ['agent'],
        canSendAudio: false,
        manySessions: true,
      },
    });
    expect(json(event.reply)).toEqual({
      version: '2',
      id: SESSION,
      type: 'opened',
      seq: 1,
      clientseq: 1,
      parameters: { media: [offer(['internal'])], startPaused: false },
    });
  });

  test('stereo frames: external is the caller, internal the agent, in whichever order they are offered; placed by samples carried', () => {
    for (const channels of [
      ['external', 'internal'],
      ['internal', 'external'],
    ]) {
      const { adapter } = opened(channels);
      // Interleaved: the first channel's bytes are 1, 2, …, the second's 101, 102, …
      const frame = Buffer.from(
        Array.from({ length: 320 }, (_, i) => (i % 2 === 0 ? 1 + i / 2 : 101 + (i - 1) / 2) % 256),
      );
      const first = channels[0] === 'external' ? 'caller' : 'agent';
      for (const at of [0, 20]) {
        const event = adapter.parseProviderMessage(frame, true) as Extract<ProviderEvent, { type: 'stereo' }>;
        expect(event).toMatchObject({ type: 'stereo', timestampMs: at });
        expect([...event[first].subarray(0, 3)]).toEqual([1, 2, 3]);
        expect([...event[first === 'caller' ? 'agent' : 'caller'].subarray(0, 3)]).toEqual([101, 102, 103]);
      }
    }
    expect(code(() => opened().adapter.parseProviderMessage(Buffer.alloc(161), true))).toBe('ERR_BAD_PAYLOAD');
  });

  test("paused/resumed and discarded move the call's clock as Genesys's position does not", () => {
    const { adapter, send } = opened(['external']);
    adapter.parseProviderMessage(Buffer.alloc(8000), true); // 1 s
    expect(adapter.parseProviderMessage(send('paused'), false)).toEqual({ type: 'pause' });
    expect(adapter.parseProviderMessage(send('resumed', { start: 'PT1S', discarded: 'PT2.5S' }), false)).toEqual({
      type: 'resume',
      atMs: 3500,
    });
    expect(adapter.parseProviderMessage(Buffer.alloc(160), true)).toMatchObject({ timestampMs: 3500 });
    // Genesys's position is now 1.02 s; it drops 0.48 s from there.
    expect(adapter.parseProviderMessage(send('discarded', { start: 'PT1.02S', discarded: 'PT0.48S' }), false)).toEqual({
      type: 'lost',
      fromMs: 3520,
      toMs: 4000,
    });
    expect(adapter.parseProviderMessage(Buffer.alloc(160), true)).toMatchObject({ timestampMs: 4000 });
    expect(
      code(() => adapter.parseProviderMessage(send('discarded', { start: '1.5', discarded: 'PT1S' }), false)),
    ).toBe('ERR_MALFORMED_MESSAGE');
  });

  test('ping, update, error, close: each answered as the protocol says, numbered in turn', () => {
    const { adapter, send } = opened();
    expect(json(adapter.parseProviderMessage(send('ping', { rtt: 'PT0.05S' }), false).reply)).toEqual({
      version: '2',
      id: SESSION,
      type: 'pong',
      seq: 2,
      clientseq: 2,
      parameters: {},
    });
    expect(adapter.parseProviderMessage(send('update', { language: 'fr-FR' }), false)).toEqual({ type: 'other' });
    expect(adapter.parseProviderMessage(send('error', { code: 409, message: 'conflict' }), false)).toEqual({
      type: 'other',
    });
    expect(json(adapter.pauseMessage!(true))).toMatchObject({ type: 'pause', seq: 3, clientseq: 4 });
    const close = adapter.parseProviderMessage(send('close', { reason: 'end' }), false);
    expect(close.type).toBe('stop');
    expect(json(close.reply)).toMatchObject({ type: 'closed', seq: 4, clientseq: 5 });
    expect(json(adapter.failMessage!('ERR_STREAM_IDLE: no media for 60 s'))).toMatchObject({
      type: 'disconnect',
      seq: 5,
      parameters: { reason: 'error', info: 'ERR_STREAM_IDLE: no media for 60 s' },
    });
    expect(json(adapter.failMessage!('ERR_BAD_TOKEN: token missing'))).toMatchObject({
      parameters: { reason: 'unauthorized' },
    });
  });

  test('the probe is answered opened and starts nothing', () => {
    const adapter = adapters.genesys(upgrade);
    const event = adapter.parseProviderMessage(
      client()('open', openParams([offer(['external', 'internal'])], '00000000-0000-0000-0000-000000000000')),
      false,
    );
    expect(event.type).toBe('other');
    expect(json(event.reply)).toMatchObject({ type: 'opened', seq: 1, clientseq: 1 });
  });

  test('protocol errors carry codes: out of sequence, before open, a second open, no format callrec records', () => {
    const { adapter } = opened();
    const skip = Buffer.from(
      JSON.stringify({
        version: '2',
        id: SESSION,
        type: 'ping',
        seq: 5,
        serverseq: 1,
        position: 'PT0S',
        parameters: {},
      }),
    );
    expect(code(() => adapter.parseProviderMessage(skip, false))).toBe('ERR_MALFORMED_MESSAGE');
    const fresh = adapters.genesys(upgrade);
    expect(code(() => fresh.parseProviderMessage(client()('ping'), false))).toBe('ERR_UNEXPECTED_MESSAGE');
    expect(code(() => fresh.parseProviderMessage(Buffer.alloc(160), true))).toBe('ERR_UNEXPECTED_MESSAGE');
    const twice = adapters.genesys(upgrade);
    const send = client();
    twice.parseProviderMessage(send('open', openParams([offer(['external'])])), false);
    expect(code(() => twice.parseProviderMessage(send('open', openParams([offer(['external'])])), false))).toBe(
      'ERR_UNEXPECTED_MESSAGE',
    );
    expect(
      code(() =>
        adapters
          .genesys(upgrade)
          .parseProviderMessage(client()('open', openParams([offer(['external'])]), { version: '3' }), false),
      ),
    ).toBe('ERR_MALFORMED_MESSAGE');
    expect(adapters.genesys(upgrade).failMessage!('ERR_MALFORMED_MESSAGE: message is not JSON')).toBeNull();
    for (const media of [[offer(['external', 'external'])], [offer(['external'], 'PCMU', 16000)], [offer([])], []]) {
      expect(
        code(() => adapters.genesys(upgrade).parseProviderMessage(client()('open', openParams(media)), false)),
      ).toBe('ERR_UNSUPPORTED_CODEC');
    }
  });
});

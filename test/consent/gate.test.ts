import { CALL_RECORDING_DEFAULTS, type CallRecordingSettings } from '../../src/agents/settings.js';
import { ConsentGate, type ConsentGateOptions, type ConsentGateState } from '../../src/consent/gate.js';
import { PromptCache } from '../../src/consent/prompts.js';
import { createLogger } from '../../src/log.js';
import {
  expectOnlyMoves,
  FakePromptPort,
  reaches,
  runtimeMessage,
  storedCall,
  storeWithCall,
} from '../calls/helpers.js';
import type { TestStore } from '../helpers/db.js';
import { HeldEngine } from './helpers.js';

const STATUSES: ConsentGateState['status'][] = ['idle', 'synthesizing', 'playing', 'awaiting_digit', 'settled'];

let db: TestStore;
let engine: HeldEngine;
let port: FakePromptPort;

beforeEach(async () => {
  db = await storeWithCall();
  engine = new HeldEngine();
  port = new FakePromptPort();
});
afterEach(() => db.cleanup());

function gate(settings: Partial<CallRecordingSettings> = {}, opts: Partial<ConsentGateOptions> = {}): ConsentGate {
  return new ConsentGate({
    store: db.store,
    log: createLogger('silent'),
    prompts: new PromptCache(engine),
    tenantId: 't1',
    callId: 'c1',
    settings: { ...CALL_RECORDING_DEFAULTS, enabled: true, consent_message: 'Recorded.', ...settings },
    format: { codec: 'pcmu', sampleRate: 8000 },
    port,
    ...opts,
  });
}

/** Drives a fresh gate to `playing`: prompt asked, a 200 ms prompt synthesized and sent. */
async function playing(g: ConsentGate): Promise<Extract<ConsentGateState, { status: 'playing' }>> {
  g.prompt();
  engine.finish(200);
  return (await reaches(g, 'playing')) as Extract<ConsentGateState, { status: 'playing' }>;
}

test('idle: may only start synthesizing or settle; holds nothing', () => {
  const g = gate();
  expect(g.record).toBeNull();
  expect(g.hold(runtimeMessage(1))).toBe(false);
  expectOnlyMoves(g, STATUSES, ['synthesizing', 'settled']);
  expect(() => g.mark('callrec-consent-x')).not.toThrow();
  g.dtmf('1');
  g.cancel('call ended');
  expect(g.state.status).toBe('idle');
});

test('idle → settled (not_required) saves the record', async () => {
  const g = gate();
  const changes: string[] = [];
  g.on('stateChange', (prev, next) => changes.push(`${prev.status}→${next.status}`));
  g.notRequired('consent_prompt is off');
  expect(changes).toEqual(['idle→settled']);
  await g.saved;
  expect((await storedCall(db.store)).consent).toMatchObject({
    outcome: 'not_required',
    reason: 'consent_prompt is off',
    mode: 'one_party',
  });
});

test('synthesizing holds the runtime from the first byte, before any prompt audio exists', async () => {
  const g = gate();
  g.prompt();
  expect(g.state.status).toBe('synthesizing');
  expect(g.holding).toBe(true);
  expect(g.hold(runtimeMessage(1))).toBe(true);
  expect(g.hold(runtimeMessage(2))).toBe(true);
  expect(port.audio).toEqual([]);
  expect(port.released).toEqual([]);
  expectOnlyMoves(g, STATUSES, ['playing', 'settled']);
  expect(() => g.prompt()).toThrow(expect.objectContaining({ code: 'ERR_ILLEGAL_TRANSITION' }));
  expect(() => g.notRequired('late')).toThrow(expect.objectContaining({ code: 'ERR_ILLEGAL_TRANSITION' }));
});

test('synthesizing → playing: the prompt goes out in 20 ms frames, then the mark; the pending record is saved', async () => {
  const g = gate();
  port.clock = 120;
  g.prompt();
  g.hold(runtimeMessage(1));
  engine.finish(200);
  const s = await reaches(g, 'playing');
  // 200 ms of sound, trimmed to 100 ms of silence either side plus 100 ms of tail, in 20 ms frames.
  expect(port.audio.length).toBeGreaterThanOrEqual(10);
  expect(port.audio.every((frame) => frame.length === 160)).toBe(true);
  expect(port.marks).toEqual([s.status === 'playing' && s.mark]);
  expect(port.marks[0]).toMatch(/^callrec-consent-/);
  expect(g.holding).toBe(true);
  expect(port.released).toEqual([]);
  await g.saved;
  expect((await storedCall(db.store)).consent).toMatchObject({
    outcome: 'pending',
    message: 'Recorded.',
    engine: 'held',
    voice: 'tone',
    prompt_started_ms: 120,
  });
  expectOnlyMoves(g, STATUSES, ['awaiting_digit', 'settled']);
});

test('synthesizing → settled (failed) when synthesis fails: the hold is released in order', async () => {
  const g = gate();
  g.prompt();
  g.hold(runtimeMessage(1));
  g.hold(runtimeMessage(2));
  engine.fail(new Error('engine down'));
  await reaches(g, 'settled');
  expect(g.holding).toBe(false);
  expect(port.released).toEqual([runtimeMessage(1), runtimeMessage(2)]);
  await g.saved;
  expect((await storedCall(db.store)).consent).toMatchObject({
    outcome: 'failed',
    reason: expect.stringContaining('engine down'),
  });
});

test('one-party: playing → settled (announced) on the mark; the hold is released, the record dated', async () => {
  const g = gate();
  const s = await playing(g);
  g.hold(runtimeMessage(1));
  expect(g.mark('their-own-mark')).toBe(false);
  expect(g.mark('callrec-consent-stale')).toBe(true);
  expect(g.state).toBe(s);
  port.clock = 2040;
  expect(g.mark(s.mark)).toBe(true);
  expect(g.state.status).toBe('settled');
  expect(port.released).toEqual([runtimeMessage(1)]);
  expect(g.hold(runtimeMessage(2))).toBe(false);
  await g.saved;
  expect((await storedCall(db.store)).consent).toMatchObject({
    outcome: 'announced',
    reason: null,
    prompt_ended_ms: 2040,
  });
  expectOnlyMoves(g, STATUSES, ['synthesizing', 'settled']);
  // Only a "not required" outcome may be asked again.
  expect(() => g.prompt()).toThrow(expect.objectContaining({ code: 'ERR_ILLEGAL_TRANSITION' }));
});

test('playing → settled (failed) when the mark never comes back', async () => {
  const g = gate({}, { markGraceMs: 1 });
  await playing(g);
  g.hold(runtimeMessage(1));
  await reaches(g, 'settled');
  expect(g.record).toMatchObject({
    outcome: 'failed',
    reason: expect.stringContaining('did not confirm the prompt played'),
  });
  expect(port.released).toEqual([runtimeMessage(1)]);
});

describe('two-party', () => {
  const twoParty = { consent_mode: 'two_party', consent_digit: '1', consent_timeout_seconds: 1 } as const;

  async function awaitingDigit(g: ConsentGate) {
    const s = await playing(g);
    g.mark(s.mark);
    expect(g.state.status).toBe('awaiting_digit');
  }

  test('playing → awaiting_digit: the runtime stays held until the caller answers', async () => {
    const g = gate(twoParty);
    await awaitingDigit(g);
    expect(g.hold(runtimeMessage(1))).toBe(true);
    expect(port.released).toEqual([]);
    expectOnlyMoves(g, STATUSES, ['settled']);
    g.dtmf('1');
    expect(g.record).toMatchObject({ outcome: 'agreed', digit: '1', reason: null });
    expect(port.released).toEqual([runtimeMessage(1)]);
  });

  test.each([
    [
      'another digit',
      (g: ConsentGate) => g.dtmf('2'),
      { outcome: 'declined', digit: '2', reason: 'caller pressed 2, not 1' },
    ],
    [
      'no digit in time',
      (g: ConsentGate) => reaches(g, 'settled'),
      { outcome: 'timeout', digit: null, reason: 'no digit within 1 s' },
    ],
    [
      'the call ending',
      (g: ConsentGate) => g.cancel('call ended (provider stop)'),
      { outcome: 'timeout', digit: null, reason: 'call ended (provider stop) before the caller pressed a digit' },
    ],
  ])('awaiting_digit → settled on %s; the runtime is released', async (_name, answer, record) => {
    const g = gate(twoParty);
    await awaitingDigit(g);
    g.hold(runtimeMessage(1));
    await answer(g);
    expect(port.released).toEqual([runtimeMessage(1)]);
    await g.saved;
    expect((await storedCall(db.store)).consent).toMatchObject(record);
  });
});

test.each(['synthesizing', 'playing'] as const)(
  'cancel while %s fails closed, and a late synthesis sends nothing',
  async (status) => {
    const g = gate();
    if (status === 'playing') await playing(g);
    else g.prompt();
    const sent = port.audio.length;
    g.cancel('recording stopped');
    expect(g.record).toMatchObject({
      outcome: 'failed',
      reason: 'recording stopped before the prompt finished playing',
    });
    engine.finish(200);
    await new Promise((resolve) => setImmediate(resolve));
    expect(port.audio.length).toBe(sent);
    expect(g.state.status).toBe('settled');
    g.cancel('again');
    expect(g.record!.reason).toBe('recording stopped before the prompt finished playing');
  },
);

test('a one-way stream settles failed at once, holding nothing', () => {
  port.canPlayAudio = false;
  const g = gate();
  g.prompt();
  expect(g.record).toMatchObject({ outcome: 'failed', reason: expect.stringContaining('one-way') });
  expect(engine.pending).toBe(0);
});

test('a provider without marks cannot confirm playback: failed', async () => {
  port.marksSupported = false;
  const g = gate();
  g.prompt();
  engine.finish(200);
  await reaches(g, 'settled');
  expect(g.record).toMatchObject({ outcome: 'failed', reason: expect.stringContaining('cannot confirm playback') });
});

test('settled (not_required) → settled: a start action without a prompt records why anew', async () => {
  const g = gate();
  g.notRequired('not recorded unless started (auto_record is off)');
  g.notRequired('consent_prompt is off');
  expect(g.record).toMatchObject({ outcome: 'not_required', reason: 'consent_prompt is off' });
  await g.saved;
  expect((await storedCall(db.store)).consent).toMatchObject({ reason: 'consent_prompt is off' });
});

test('settled (not_required) may prompt after all, when a start action asks', async () => {
  const g = gate();
  g.notRequired('not recorded unless started (auto_record is off)');
  await playing(g);
  expect(g.record).toMatchObject({ outcome: 'pending', reason: null });
});

test('the hold is bounded in bytes too', async () => {
  const g = gate({}, { hold: { maxBytes: 2 * runtimeMessage(1).data.length } });
  g.prompt();
  for (let i = 1; i <= 3; i++) g.hold(runtimeMessage(i));
  engine.fail(new Error('down'));
  await reaches(g, 'settled');
  expect(port.released).toEqual([runtimeMessage(1), runtimeMessage(2)]);
});

test('the hold is bounded: overflow is dropped and counted, the rest released in order', async () => {
  const g = gate({}, { hold: { maxMessages: 2 } });
  g.prompt();
  for (let i = 1; i <= 4; i++) expect(g.hold(runtimeMessage(i))).toBe(true);
  expect((g.state as Extract<ConsentGateState, { status: 'synthesizing' }>).hold.dropped).toBe(2);
  engine.fail(new Error('down'));
  await reaches(g, 'settled');
  expect(port.released).toEqual([runtimeMessage(1), runtimeMessage(2)]);
});

import { once } from 'node:events';
import { CALL_RECORDING_DEFAULTS, type CallRecordingSettings } from '../../src/agents/settings.js';
import { StateMachine, type MachineState } from '../../src/calls/machine.js';
import type { HeldMessage } from '../../src/consent/hold.js';
import type { PromptPort } from '../../src/consent/gate.js';
import type { Store } from '../../src/store/index.js';
import { createTestStore, type TestStore } from '../helpers/db.js';

/** A fresh SQLite store holding one live call, `t1`/`c1`, whose consent and pauses the machines save. */
export async function storeWithCall(
  settings: Partial<CallRecordingSettings> = {},
): Promise<TestStore & { tenantId: string; callId: string }> {
  const db = await createTestStore('sqlite');
  await db.store.calls.create({
    tenantId: 't1',
    id: 'c1',
    agentId: 'agent-a',
    provider: 'twilio',
    mode: 'bridge',
    sampleRate: 8000,
    legs: ['caller', 'agent'],
    settings: { ...CALL_RECORDING_DEFAULTS, ...settings },
  });
  return { ...db, tenantId: 't1', callId: 'c1' };
}

/** The call `t1`/`c1` as stored. */
export async function storedCall(store: Store) {
  return (await store.calls.get('t1', 'c1'))!;
}

/** The provider side of a consent gate, in memory: what was sent, what the hold let through. */
export class FakePromptPort implements PromptPort {
  canPlayAudio = true;
  marksSupported = true;
  clock = 0;
  readonly audio: Buffer[] = [];
  readonly marks: string[] = [];
  readonly released: HeldMessage[] = [];

  sendAudio(frame: Buffer): void {
    this.audio.push(frame);
  }

  sendMark(name: string): boolean {
    if (this.marksSupported) this.marks.push(name);
    return this.marksSupported;
  }

  clockMs(): number {
    return this.clock;
  }

  release(message: HeldMessage): void {
    this.released.push(message);
  }
}

/** A runtime message whose bytes say which one it is. */
export function runtimeMessage(n: number): HeldMessage {
  return { data: Buffer.from(`runtime ${n}`), isBinary: false };
}

/** Resolves once `machine` is in `status` (at once if it already is). */
export async function reaches<S extends MachineState>(machine: StateMachine<S>, status: S['status']): Promise<S> {
  while (machine.state.status !== status) await once(machine, 'stateChange');
  return machine.state;
}

/** The machine's protected `state` setter, reached the way a subclass would. */
const setState = Object.getOwnPropertyDescriptor(StateMachine.prototype, 'state')!.set!;

/**
 * Asserts the machine's setter refuses, from the state it is in, every status `allowed` does not
 * list, with `ERR_ILLEGAL_TRANSITION`, and leaves the state as it was.
 */
export function expectOnlyMoves<S extends MachineState>(
  machine: StateMachine<S>,
  all: readonly S['status'][],
  allowed: readonly S['status'][],
): void {
  const before = machine.state;
  for (const status of all.filter((s) => !allowed.includes(s))) {
    let error: unknown;
    try {
      setState.call(machine, { status });
    } catch (err) {
      error = err;
    }
    expect(error).toMatchObject({
      code: 'ERR_ILLEGAL_TRANSITION',
      message: expect.stringContaining(`${before.status} → ${status}`),
    });
    expect(machine.state).toBe(before);
  }
}

import { EventEmitter } from 'node:events';
import { CallrecError } from '../errors.js';

/** One state of a machine: a member of a union discriminated by `status`. */
export interface MachineState {
  readonly status: string;
}

/** For each status, the statuses a machine may move to from it. */
export type Transitions<S extends MachineState> = { readonly [K in S['status']]: readonly S['status'][] };

/** Events every machine emits. */
export interface MachineEvents<S extends MachineState> {
  stateChange: [oldState: S, newState: S];
}

/**
 * Base of callrec's stateful objects, after @discordjs/voice's `AudioPlayer`: the state is one
 * member of a discriminated union that carries its own resources (timers, sockets, records),
 * and assigning `state` is the only way to change it. The setter refuses a move its table
 * does not list (`ERR_ILLEGAL_TRANSITION`), installs the new state, emits `stateChange(old, new)`,
 * and lets the machine release what the old one held (`onTransition`).
 */
export abstract class StateMachine<S extends MachineState> extends EventEmitter<MachineEvents<S>> {
  #state: S;
  /**
   * The state's status, kept by the setter beside it. Hot paths test this field of the machine's
   * one hidden class: `state.status` is read off objects of as many shapes as there are states,
   * and a site that sees more than four of them goes megamorphic (3% of the fork path's CPU, bench).
   */
  #status: S['status'];
  readonly #transitions: Transitions<S>;
  /** The machine's store writes, in order. */
  #writes: Promise<unknown> = Promise.resolve();

  protected constructor(initial: S, transitions: Transitions<S>) {
    super();
    this.#state = initial;
    this.#status = initial.status;
    this.#transitions = transitions;
  }

  get state(): S {
    return this.#state;
  }

  get status(): S['status'] {
    return this.#status;
  }

  /** The state if its status is `status`, else null: a check on the hot path (see `#status`). */
  protected stateIf<K extends S['status']>(status: K): Extract<S, { status: K }> | null {
    return this.#status === status ? (this.#state as Extract<S, { status: K }>) : null;
  }

  /** Resolves once every store write so far has finished (failed ones too). */
  get saved(): Promise<void> {
    return this.#writes.then(() => {});
  }

  /** Runs `write` after the machine's earlier writes; a failure goes to the caller, not to later writes. */
  protected persist<T>(write: () => Promise<T>): Promise<T> {
    const result = this.#writes.then(write);
    this.#writes = result.catch(() => {});
    return result;
  }

  protected set state(next: S) {
    const prev = this.#state;
    const allowed: readonly string[] = this.#transitions[prev.status as S['status']];
    if (!allowed.includes(next.status)) {
      throw new CallrecError(
        'ERR_ILLEGAL_TRANSITION',
        `${this.constructor.name}: ${prev.status} → ${next.status} is not a transition`,
      );
    }
    // Installed first, so whatever follows sees the new state. Listeners hear of it before the
    // old state's resources are released: whoever follows this machine gets in step first (the
    // recorder starts capturing before the consent gate lets the held runtime audio through).
    this.#state = next;
    this.#status = next.status;
    this.emit('stateChange', prev, next);
    this.onTransition(prev, next);
  }

  /** Releases what `prev` held that `next` does not carry on, and starts what entering `next` means. */
  protected abstract onTransition(prev: S, next: S): void;
}

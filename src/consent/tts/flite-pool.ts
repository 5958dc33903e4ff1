import { Worker } from 'node:worker_threads';
import { CallrecError } from '../../errors.js';

/** How many Flite syntheses run at once, and how many may wait (FLITE_*; docs/limits.md). */
export interface FlitePoolLimits {
  /** Worker threads: each runs one synthesis at a time, in a WASM instance of its own (~43 MB). */
  workers: number;
  /** Syntheses waiting for a worker; past it a synthesis is refused `ERR_TTS_BUSY`. */
  maxQueued: number;
  /** How long a synthesis may wait for a worker before it is refused `ERR_TTS_BUSY`. */
  maxWaitMs: number;
}

export const FLITE_POOL_DEFAULTS: FlitePoolLimits = { workers: 2, maxQueued: 100, maxWaitMs: 10_000 };

// Runs in each worker as CommonJS: one WASI instance per job (a WASI instance runs `main` once).
// The instance's memory is collected after each job: left to V8's own pace, a worker kept
// several dead instances, and 60 prompts on 2 workers took +373 MB; collected, +81 MB (and
// faster). `gc` is exposed at run time (V8 flags cannot be given to a worker), to new contexts only.
const FLITE_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const { WASI } = require('node:wasi');
require('node:v8').setFlagsFromString('--expose-gc');
// Where the flag does not take (a future Node), instances are left to V8's own pace.
const exposed = require('node:vm').runInNewContext('typeof gc === "function" ? gc : null');
const collect = exposed || (() => {});
parentPort.on('message', ({ args, dir }) => {
  try {
    const wasi = new WASI({ version: 'preview1', args, preopens: { '/out': dir }, returnOnExit: true });
    const exit = wasi.start(new WebAssembly.Instance(workerData.module, wasi.getImportObject()));
    collect();
    parentPort.postMessage({ exit });
  } catch (err) {
    parentPort.postMessage({ error: String((err && err.message) || err) });
  }
});
`;

interface Job {
  args: string[];
  dir: string;
  resolve(exit: number): void;
  reject(err: Error): void;
  /** Refuses the job once it has waited `maxWaitMs`; cleared when a worker takes it. */
  timer: NodeJS.Timeout | null;
}

/**
 * A fixed pool of worker threads running Flite (compiled once, `module`), with a bounded
 * queue: memory for synthesis is the pool's whatever the number of distinct prompts asked for
 * at once (60 concurrent ones, each in a fresh worker, once took 2.5 GB). Hand-written rather
 * than a pool library: jobs must carry a WebAssembly module to threads that are started with it,
 * and wait in a queue with its own size and deadline.
 */
export class FlitePool {
  readonly #module: () => Promise<object>;
  readonly #limits: FlitePoolLimits;
  readonly #idle: Worker[] = [];
  /** Every live worker, and the job it runs (null while idle). */
  readonly #workers = new Map<Worker, Job | null>();
  readonly #queue: Job[] = [];
  /** Workers being started (the module compiling): they count against the limit already. */
  #spawning = 0;
  #closed = false;

  constructor(module: () => Promise<object>, limits: FlitePoolLimits = FLITE_POOL_DEFAULTS) {
    this.#module = module;
    this.#limits = limits;
  }

  /** Worker threads alive now (at most `workers`). */
  get threads(): number {
    return this.#workers.size;
  }

  /** Runs Flite with `args`, `dir` preopened as `/out`; resolves with its exit code. Rejects `ERR_TTS_BUSY` when the queue is full or the wait too long. */
  run(args: string[], dir: string): Promise<number> {
    return new Promise((resolve, reject) => {
      if (this.#closed) return reject(new CallrecError('ERR_TTS', 'the Flite pool is closed'));
      const job: Job = { args, dir, resolve, reject, timer: null };
      if (this.#hasRoom()) return this.#start(job);
      const { maxQueued, maxWaitMs } = this.#limits;
      if (this.#queue.length >= maxQueued)
        return reject(
          new CallrecError('ERR_TTS_BUSY', `${maxQueued} syntheses already wait for a Flite worker (FLITE_QUEUE_MAX)`),
        );
      job.timer = setTimeout(() => {
        this.#queue.splice(this.#queue.indexOf(job), 1);
        reject(
          new CallrecError(
            'ERR_TTS_BUSY',
            `no Flite worker was free within ${maxWaitMs / 1000} s (FLITE_QUEUE_WAIT_SECONDS)`,
          ),
        );
      }, maxWaitMs);
      job.timer.unref();
      this.#queue.push(job);
    });
  }

  /** An idle worker, or room for another (those being started count). */
  #hasRoom(): boolean {
    return this.#idle.length > 0 || this.#workers.size + this.#spawning < this.#limits.workers;
  }

  /** Gives the job an idle worker, or a new one. */
  #start(job: Job): void {
    const idle = this.#idle.pop();
    if (idle) return this.#assign(idle, job);
    this.#spawning++;
    this.#spawn().then(
      (worker) => {
        this.#spawning--;
        this.#assign(worker, job);
      },
      (err: Error) => {
        this.#spawning--;
        job.reject(err);
        this.#next();
      },
    );
  }

  #assign(worker: Worker, job: Job): void {
    this.#workers.set(worker, job);
    // Busy workers keep the process alive (a script awaiting a synthesis); idle ones do not.
    worker.ref();
    worker.postMessage({ args: job.args, dir: job.dir });
  }

  async #spawn(): Promise<Worker> {
    const module = await this.#module();
    const worker = new Worker(FLITE_WORKER, {
      eval: true,
      workerData: { module },
      // node:wasi warns that it is experimental, once per thread.
      execArgv: ['--disable-warning=ExperimentalWarning'],
    });
    worker.on('message', (result: { exit?: number; error?: string }) => {
      const job = this.#workers.get(worker);
      if (!job) return;
      if (result.error !== undefined) job.reject(new Error(result.error));
      else job.resolve(result.exit!);
      this.#done(worker);
    });
    const lost = (why: string) => {
      const job = this.#workers.get(worker);
      this.#workers.delete(worker);
      const at = this.#idle.indexOf(worker);
      if (at >= 0) this.#idle.splice(at, 1);
      job?.reject(new Error(why));
      this.#next();
    };
    worker.on('error', (err) => lost(`flite worker failed: ${err.message}`));
    worker.on('exit', (code) => lost(`flite worker stopped with code ${code}`));
    return worker;
  }

  /** A worker finished its job: it takes the next one, or idles (or stops, once the pool is closed). */
  #done(worker: Worker): void {
    if (this.#closed) return void worker.terminate();
    this.#workers.set(worker, null);
    this.#idle.push(worker);
    worker.unref();
    this.#next();
  }

  #next(): void {
    if (this.#closed || this.#queue.length === 0 || !this.#hasRoom()) return;
    const job = this.#queue.shift()!;
    clearTimeout(job.timer!);
    this.#start(job);
  }

  /**
   * Stops the idle workers, and each busy one once its synthesis is done (a thread is not
   * terminated inside WebAssembly); what waits is refused.
   */
  async close(): Promise<void> {
    this.#closed = true;
    for (const job of this.#queue.splice(0)) {
      clearTimeout(job.timer!);
      job.reject(new CallrecError('ERR_TTS', 'the Flite pool closed'));
    }
    await Promise.all(this.#idle.splice(0).map((worker) => worker.terminate()));
  }
}

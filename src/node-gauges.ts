import fs from 'node:fs/promises';
import path from 'node:path';
import { passesInTime } from './api/health.js';
import type { NodeHeartbeat } from './calls/heartbeat.js';
import type { MediaMetrics } from './metrics.js';
import type { RecordingQueues } from './queue/recordings.js';
import type { Store } from './store/index.js';

/** By default the database is asked for recordings by status at most this often (a grouped count over the table). */
export const RECORDINGS_REFRESH_MS = 30_000;
const JOB_STATES = ['waiting', 'active', 'delayed', 'prioritized', 'completed', 'failed'] as const;

export interface NodeGaugeSources {
  metrics: MediaMetrics;
  store: Store;
  recordings: RecordingQueues;
  heartbeat: NodeHeartbeat;
  nodeId: string;
  /** Spools are under `<dataDir>/spool`. */
  dataDir: string;
  /** The node's open spools: their bytes not on disk yet. */
  spools: { readonly pendingBytes: number };
  /** How often recordings by status are counted again; default `RECORDINGS_REFRESH_MS`. */
  recordingsRefreshMs?: number;
}

/**
 * The gauges of `/metrics` read from outside the process (Redis, the database, the disk), set on
 * each scrape. Each source gets `passesInTime`: one that does not answer keeps its last value
 * rather than holding the scrape.
 */
export class NodeGauges {
  readonly #deps: NodeGaugeSources;
  #recordingsAt = 0;

  constructor(deps: NodeGaugeSources) {
    this.#deps = deps;
  }

  async refresh(): Promise<void> {
    const { metrics, heartbeat } = this.#deps;
    metrics.heartbeatAge.set(heartbeat.ageSeconds);
    metrics.spoolPendingBytes.set(this.#deps.spools.pendingBytes);
    await Promise.all([passesInTime(this.#queues()), passesInTime(this.#spoolBytes()), passesInTime(this.#recordingsByStatus())]);
  }

  async #queues(): Promise<void> {
    const { metrics, recordings, nodeId } = this.#deps;
    for (const [label, queue] of [['shared', recordings.queue(null)], ['node', recordings.queue(nodeId)]] as const) {
      const counts = await queue.getJobCounts(...JOB_STATES);
      for (const state of JOB_STATES) metrics.recordingQueueJobs.set({ queue: label, state }, counts[state] ?? 0);
    }
  }

  async #spoolBytes(): Promise<void> {
    const dir = path.join(this.#deps.dataDir, 'spool');
    const names = await fs.readdir(dir).catch(() => [] as string[]);
    const sizes = await Promise.all(names.map((name) => fs.stat(path.join(dir, name)).then((s) => (s.isFile() ? s.size : 0), () => 0)));
    this.#deps.metrics.spoolBytes.set(sizes.reduce((a, b) => a + b, 0));
  }

  async #recordingsByStatus(): Promise<void> {
    if (Date.now() - this.#recordingsAt < (this.#deps.recordingsRefreshMs ?? RECORDINGS_REFRESH_MS)) return;
    this.#recordingsAt = Date.now();
    const counts = await this.#deps.store.recordings.countByStatus();
    const { recordingsByStatus } = this.#deps.metrics;
    recordingsByStatus.reset();
    for (const [status, count] of Object.entries(counts)) recordingsByStatus.set({ status }, count);
  }
}

import fs from 'node:fs/promises';
import path from 'node:path';
import { passesInTime } from './api/health.js';
import type { NodeHeartbeat } from './calls/heartbeat.js';
import type { MediaMetrics } from './metrics.js';
import type { RecordingQueues } from './queue/recordings.js';
import type { SpoolBytes } from './recording/spool-bytes.js';
import type { Store } from './store/index.js';

/** By default the database is asked for recordings by status at most this often (a grouped count over the table). */
export const RECORDINGS_REFRESH_MS = 30_000;
const JOB_STATES = ['waiting', 'active', 'delayed', 'prioritized', 'completed', 'failed'] as const;

export interface NodeGaugeSources {
  metrics: MediaMetrics;
  store: Store;
  recordings: RecordingQueues;
  /** Shipped spool bytes in storage, cluster-wide. */
  spoolBytes: Pick<SpoolBytes, 'total'>;
  /** A media node's heartbeat, id (its own queue) and open spools (their bytes not on disk yet); absent on a worker node, which has none. */
  node?: { heartbeat: NodeHeartbeat; nodeId: string; spools: { readonly pendingBytes: number } };
  /** Spools are under `<dataDir>/spool`. */
  dataDir: string;
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
    // A worker beats no heartbeat; a never-set timestamp would be scraped as 0 (1970), which a
    // `time() - callrec_node_heartbeat_timestamp_seconds` alert takes for a dead node.
    if (!deps.node) deps.metrics.registry.removeSingleMetric('callrec_node_heartbeat_timestamp_seconds');
  }

  /** `/metrics`: the gauges refreshed, then every series in the exposition format. */
  async scrape(): Promise<string> {
    await this.refresh();
    return this.#deps.metrics.registry.metrics();
  }

  async refresh(): Promise<void> {
    const { metrics, node, spoolBytes } = this.#deps;
    if (node) {
      metrics.heartbeatTimestamp.set(node.heartbeat.lastBeatAt / 1000);
      metrics.spoolPendingBytes.set(node.spools.pendingBytes);
    }
    const inStorage = spoolBytes.total().then((bytes) => metrics.spoolBytesInStorage.set(bytes));
    await Promise.all([
      passesInTime(this.#queues()),
      passesInTime(this.#spoolBytes()),
      passesInTime(this.#recordingsByStatus()),
      passesInTime(inStorage),
    ]);
  }

  async #queues(): Promise<void> {
    const { metrics, recordings, node } = this.#deps;
    const queues = [
      ['shared', recordings.queue(null)],
      ...(node ? [['node', recordings.queue(node.nodeId)] as const] : []),
    ] as const;
    for (const [label, queue] of queues) {
      const counts = await queue.getJobCounts(...JOB_STATES);
      for (const state of JOB_STATES) metrics.recordingQueueJobs.set({ queue: label, state }, counts[state] ?? 0);
    }
  }

  async #spoolBytes(): Promise<void> {
    const dir = path.join(this.#deps.dataDir, 'spool');
    const names = await fs.readdir(dir).catch(() => [] as string[]);
    const sizes = await Promise.all(
      names.map((name) =>
        fs.stat(path.join(dir, name)).then(
          (s) => (s.isFile() ? s.size : 0),
          () => 0,
        ),
      ),
    );
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

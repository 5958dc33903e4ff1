import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { CALL_RECORDING_DEFAULTS } from '../src/agents/settings.js';
import { MasterKeyring } from '../src/crypto/keys.js';
import { auditLedgers } from '../src/evidence/audit.js';
import { Evidence } from '../src/evidence/index.js';
import { createStore } from '../src/store/index.js';
import type { BenchResult } from './media.js';

/** Recordings sealed to time finalize's signing step, after a warm-up (the first signature of a node opens its key, and V8 compiles the path). */
const SEALS = 200;
const WARMUP = 20;
/** Ledger entries `callrec audit verify` is timed over: a manifest, then reads of it. */
const LEDGER_ENTRIES = 100_000;
const READS_PER_RECORDING = 9;

function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/**
 * Evidence on SQLite (the embedded default): what signing a manifest and appending it to the
 * ledger adds to a recording's finalize, and how long `callrec audit verify` takes over a
 * 100 000-entry ledger.
 */
export async function benchEvidence(): Promise<Array<BenchResult & { target?: { text: string; pass: boolean } }>> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'callrec-bench-evidence-'));
  const store = await createStore(`sqlite://${path.join(dir, 'callrec.db')}`);
  try {
    await store.migrate();
    const evidence = new Evidence(store, await MasterKeyring.load({ dataDir: dir }));
    await store.tenants.ensure('bench', 'Bench');
    const recordings = [];
    for (let i = 0; i < Math.ceil(LEDGER_ENTRIES / (1 + READS_PER_RECORDING)); i++) {
      const callId = `call-${i}`;
      await store.calls.create({
        tenantId: 'bench',
        id: callId,
        agentId: 'a',
        provider: 'twilio',
        mode: 'fork',
        sampleRate: 8000,
        legs: ['caller', 'agent'],
        settings: CALL_RECORDING_DEFAULTS,
      });
      const recording = await store.recordings.create({
        tenantId: 'bench',
        callId,
        format: 'mp3',
        channels: 2,
        sampleRate: 8000,
        storageDays: 90,
      });
      recordings.push(
        (await store.recordings.update(recording.id, {
          status: 'ready',
          sha256: randomBytes(32).toString('hex'),
          byteSize: 1000,
          durationMs: 60_000,
        }))!,
      );
    }
    await evidence.keys.ensure();
    const sealMs: number[] = [];
    for (const [i, recording] of recordings.entries()) {
      const started = performance.now();
      await evidence.seal(recording);
      if (i >= WARMUP && i < WARMUP + SEALS) sealMs.push(performance.now() - started);
      for (let r = 0; r < READS_PER_RECORDING; r++) {
        await evidence.recordAccess('bench', {
          recording_id: recording.id,
          call_id: recording.callId,
          key_id: 'k',
          format: 'mp3',
          range: null,
          ip: '127.0.0.1',
          purpose: 'read',
          at: new Date().toISOString(),
        });
      }
    }
    const started = performance.now();
    const [audit] = await auditLedgers(store, { tenantId: 'bench' });
    const auditSeconds = (performance.now() - started) / 1000;
    if (audit.error) throw new Error(`the bench ledger does not verify: ${audit.error}`);
    const p99 = quantile(sealMs, 0.99);
    return [
      { name: 'evidence: manifest signed and appended, p50', value: quantile(sealMs, 0.5), unit: 'ms per recording' },
      { name: 'evidence: manifest signed and appended, p95', value: quantile(sealMs, 0.95), unit: 'ms per recording' },
      {
        name: 'evidence: manifest signed and appended, p99',
        value: p99,
        unit: 'ms per recording',
        target: { text: '≤ 5', pass: p99 <= 5 },
      },
      {
        name: `evidence: audit verify of ${audit.entries.toLocaleString('en')} ledger entries`,
        value: auditSeconds,
        unit: 's',
        target: { text: '< 10', pass: auditSeconds < 10 },
      },
    ];
  } finally {
    await store.close();
    await fs.rm(dir, { recursive: true, force: true });
  }
}

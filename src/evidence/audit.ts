import type { Store } from '../store/index.js';
import { ChainVerifier, keysById } from './verify.js';

/** One tenant's ledger as `callrec audit verify` found it. */
export interface LedgerAudit {
  tenantId: string;
  entries: number;
  /** The first break, or null when the whole chain holds. */
  error: string | null;
}

/**
 * Walks each tenant's ledger from its first entry: every hash, every link, every signature, every
 * manifest against its entry; then checks that each recording the ledger signed is still there or
 * has a tombstone, and that each stored recording has its manifest entry. Reports the first break
 * per tenant. Reads the ledger a page at a time, so memory stays bounded but for the ids.
 */
export async function auditLedgers(store: Store, opts: { tenantId?: string } = {}): Promise<LedgerAudit[]> {
  const keys = keysById({ keys: (await store.evidence.signingKeys()).map((row) => JSON.parse(row.public_jwk)) });
  const tenants = opts.tenantId ? [opts.tenantId] : await store.evidence.ledgerTenants();
  const audits: LedgerAudit[] = [];
  for (const tenantId of tenants) {
    const chain = new ChainVerifier(tenantId, keys);
    const manifests = await store.evidence.manifestsBySeq(tenantId);
    const signed = new Set<string>();
    const tombstoned = new Set<string>();
    let error: string | null = null;
    try {
      for await (const page of store.evidence.ledger(tenantId)) {
        for (const row of page) {
          const manifest = row.kind === 'manifest' ? manifests.get(row.seq) : undefined;
          if (row.kind === 'manifest' && !manifest)
            throw new Error(`${tenantId} entry ${row.seq}: the manifest of recording ${row.ref} was removed`);
          await chain.check(row, manifest?.jws);
          if (row.kind === 'manifest') signed.add(row.ref);
          if (row.kind === 'tombstone') tombstoned.add(row.ref);
        }
      }
      for (const recording of await store.evidence.recordingStates(tenantId)) {
        if (recording.status === 'ready' && !signed.has(recording.id))
          throw new Error(`${tenantId}: recording ${recording.id} is stored but has no manifest in the ledger`);
        if (recording.status !== 'deleted') signed.delete(recording.id);
      }
      for (const id of signed)
        if (!tombstoned.has(id)) throw new Error(`${tenantId}: recording ${id} was removed without a tombstone`);
    } catch (err) {
      error = (err as Error).message;
    }
    audits.push({ tenantId, entries: chain.count, error });
  }
  return audits;
}

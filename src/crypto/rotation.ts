import type { CallrecError } from '../errors.js';
import type { Store } from '../store/index.js';
import type { SealedSecret } from '../tenants/secrets.js';
import { rewrap, type MasterKeyring } from './keys.js';

export interface RotationReport {
  /** Null when the key came from `CALLREC_MASTER_KEY` (the operator rotated it): only re-wrapping ran. */
  rotated: { oldKeyId: string; newKeyId: string } | null;
  recordings: number;
  tenantSecrets: number;
}

/** Tenant settings fields that hold a secret sealed under the master keyring. */
const SEALED_FIELDS = ['webhook_secret', 'storage_credentials'] as const;

/**
 * `callrec keys rotate-master`: makes a new master key current (the old one stays, retired, so
 * nothing becomes unreadable), then re-wraps every recording's data key and every sealed tenant
 * secret under it. Audio is never touched: only the small wrapped keys change.
 */
export async function rotateMasterKey(store: Store, ring: MasterKeyring): Promise<RotationReport> {
  let rotated: RotationReport['rotated'] = null;
  try {
    rotated = await ring.rotate();
  } catch (err) {
    if ((err as CallrecError).code !== 'ERR_CONFIG') throw err;
  }
  const current = ring.currentKeyId;
  let recordings = 0;
  for (;;) {
    const page = await store.recordings.listWrappedOutside(current, 200);
    if (page.length === 0) break;
    for (const recording of page) {
      const next = rewrap({ keyId: recording.keyId!, wrapped: recording.wrappedKey! }, ring);
      await store.recordings.update(recording.id, { keyId: next.keyId, wrappedKey: next.wrapped });
      recordings++;
    }
  }
  let tenantSecrets = 0;
  for (const tenant of await store.tenants.list()) {
    await store.tenants.updateSettings(tenant.id, (settings) => {
      const next = { ...settings };
      for (const field of SEALED_FIELDS) {
        const sealed = next[field] as SealedSecret | null | undefined;
        if (!sealed || sealed.key_id === current) continue;
        const { keyId, wrapped } = rewrap({ keyId: sealed.key_id, wrapped: sealed.wrapped_key }, ring);
        next[field] = { ...sealed, key_id: keyId, wrapped_key: wrapped };
        tenantSecrets++;
      }
      return next;
    });
  }
  return { rotated, recordings, tenantSecrets };
}

import { createHash } from 'node:crypto';
import type { RemoteTimeouts } from '../config.js';
import type { MasterKeyring } from '../crypto/keys.js';
import type { EgressPolicy } from '../net/egress.js';
import type { Store } from '../store/index.js';
import { CallrecError } from '../errors.js';
import { loadTenantSettings, type StorageCredentials } from '../tenants/settings.js';
import { openObjectStore, type OpenObjectStoreOptions } from './index.js';
import type { ObjectStore } from './types.js';

export interface StorageResolverOptions {
  /** The server's own store (`STORAGE_URL`). */
  defaultStore: ObjectStore;
  /** `STORAGE_ENDPOINT`, for tenants' buckets that name none of their own. */
  endpoint?: string;
  store: Pick<Store, 'tenants'>;
  keyring: MasterKeyring;
  /** What a tenant's own endpoint may be (docs/security.md "Egress"). */
  egress: EgressPolicy;
  /** Of tenants' stores (default `REMOTE_TIMEOUT_DEFAULTS`). */
  timeouts?: RemoteTimeouts;
}

/**
 * A tenant's credentials in the shape its store's SDK takes. An endpoint the tenant named is
 * reached through the egress policy's agents; the operator's (`STORAGE_ENDPOINT`) is not.
 */
function sdkOptions(credentials: StorageCredentials | null, opts: StorageResolverOptions): OpenObjectStoreOptions {
  const { endpoint, timeouts } = opts;
  if (!credentials) return { endpoint, timeouts };
  if (credentials.kind === 'gs')
    return {
      endpoint,
      timeouts,
      credentials: { client_email: credentials.client_email, private_key: credentials.private_key },
    };
  return {
    endpoint: credentials.endpoint ?? endpoint,
    region: credentials.region,
    credentials: { accessKeyId: credentials.access_key_id, secretAccessKey: credentials.secret_access_key },
    timeouts,
    ...(credentials.endpoint
      ? { agent: (protocol: 'http:' | 'https:') => opts.egress.agent('storage_endpoint', protocol) }
      : {}),
  };
}

/**
 * Which object store a tenant's new recordings go to (its own bucket, or the server's), and
 * which store holds a given recording: the one its `storage_url` names, even if the tenant has
 * moved to another bucket since.
 */
export class StorageResolver {
  readonly default: ObjectStore;
  readonly #opts: StorageResolverOptions;
  /** Opened stores by URL and credentials: SDK clients keep connection pools worth reusing. */
  readonly #open = new Map<string, ObjectStore>();

  constructor(opts: StorageResolverOptions) {
    this.default = opts.defaultStore;
    this.#opts = opts;
  }

  async forTenant(tenantId: string): Promise<ObjectStore> {
    const settings = await loadTenantSettings(this.#opts.store, this.#opts.keyring, tenantId);
    return settings.storageUrl
      ? this.#at(settings.storageUrl, settings.storageCredentials, settings.storageNodeIdentity)
      : this.default;
  }

  async forRecording(recording: { tenantId: string; storageUrl: string | null }): Promise<ObjectStore> {
    const url = recording.storageUrl;
    if (url === null || url === this.default.url) return this.default;
    // The current bucket with the tenant's credentials; an earlier one with what opened it then.
    const settings = await loadTenantSettings(this.#opts.store, this.#opts.keyring, recording.tenantId);
    if (settings.storageUrl === url) return this.#at(url, settings.storageCredentials, settings.storageNodeIdentity);
    const past = settings.pastStorage[url];
    return this.#at(url, past?.credentials ?? null, past?.nodeIdentity ?? false);
  }

  /**
   * The store at `url`, opened with `credentials`; without them, with the node's own identity
   * only if the operator allowed it (`nodeIdentity`): a tenant's bucket never borrows it.
   */
  #at(url: string, credentials: StorageCredentials | null, nodeIdentity: boolean): ObjectStore {
    if (!credentials && !nodeIdentity && !url.startsWith('file:')) {
      throw new CallrecError(
        'ERR_STORAGE_REFUSED',
        `ERR_STORAGE_REFUSED: ${url} has no credentials of its own: check the tenant's storage_url and storage_credentials`,
      );
    }
    const key = `${url}\u0000${credentials ? createHash('sha256').update(JSON.stringify(credentials)).digest('hex') : ''}`;
    let store = this.#open.get(key);
    if (!store) {
      store = openObjectStore(url, sdkOptions(credentials, this.#opts));
      this.#open.set(key, store);
    }
    return store;
  }
}

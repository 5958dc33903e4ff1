import { createPublicKey } from 'node:crypto';
import net from 'node:net';
import { Type, type Static } from 'typebox';
import { Compile } from 'typebox/compile';
import { firstProblem } from '../validation.js';
import type { MasterKeyring } from '../crypto/keys.js';
import type { EgressPolicy } from '../net/egress.js';
import { checkWebhookTarget } from '../webhooks/index.js';
import { HttpError } from '../errors.js';
import { BucketUrl } from '../storage/bucket.js';
import { isStandardSecret } from '../webhooks/standard.js';
import type { Store, Tenant } from '../store/index.js';
import { openSecret, sealSecret, type SealedSecret } from './secrets.js';

const HttpUrl = Type.String({ maxLength: 2048, pattern: '^https?://' });

/** `PATCH /api/tenants/{id}`: each field present replaces the stored one, `null` clears it. */
export const TenantSettingsPatchSchema = Type.Object(
  {
    webhook_url: Type.Optional(Type.Union([HttpUrl, Type.Null()])),
    webhook_secret: Type.Optional(Type.Union([Type.String({ minLength: 16, maxLength: 256 }), Type.Null()])),
    storage_url: Type.Optional(
      Type.Union([Type.String({ maxLength: 1024, pattern: '^(file|gs|s3)://' }), Type.Null()]),
    ),
    // Checked against the shape its storage_url's scheme needs (below), so errors name the inner field.
    storage_credentials: Type.Optional(Type.Union([Type.Object({}, { additionalProperties: true }), Type.Null()])),
    public_key: Type.Optional(Type.Union([Type.String({ minLength: 1, maxLength: 16_384 }), Type.Null()])),
    // SIPREC clients (SBCs) this tenant's recording sessions come from: IP addresses or CIDRs.
    sip_sources: Type.Optional(
      Type.Union([Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { maxItems: 256 }), Type.Null()]),
    ),
  },
  { additionalProperties: false },
);

export type TenantSettingsPatch = Static<typeof TenantSettingsPatchSchema>;

const Text = (maxLength: number) => Type.String({ minLength: 1, maxLength });

/** A GCS service-account key. Pasting the whole JSON file is allowed; only these fields are kept. */
const GcsCredentialsSchema = Type.Object({ client_email: Text(320), private_key: Text(16_384), project_id: Text(128) });

const S3CredentialsSchema = Type.Object(
  {
    access_key_id: Text(256),
    secret_access_key: Text(1024),
    region: Type.Optional(Text(64)),
    endpoint: Type.Optional(HttpUrl),
  },
  { additionalProperties: false },
);

export type GcsCredentials = Static<typeof GcsCredentialsSchema>;
export type S3Credentials = Static<typeof S3CredentialsSchema>;
export type StorageCredentials = ({ kind: 'gs' } & GcsCredentials) | ({ kind: 's3' } & S3Credentials);

const CREDENTIAL_CHECKS = { gs: Compile(GcsCredentialsSchema), s3: Compile(S3CredentialsSchema) };

/** A tenant's settings, secrets decrypted: for the workers and webhooks, never for the API. */
export interface TenantSettings {
  webhookUrl: string | null;
  webhookSecret: string | null;
  /** The tenant's own bucket; null = the server's `STORAGE_URL`. */
  storageUrl: string | null;
  storageCredentials: StorageCredentials | null;
  /** True only when the operator set `storageUrl` without credentials: the node's own identity opens it. */
  storageNodeIdentity: boolean;
  /** Buckets the tenant used before, with what opened them then: its recordings there stay readable. */
  pastStorage: Record<string, { credentials: StorageCredentials | null; nodeIdentity: boolean }>;
  /** PEM (SPKI) of the RSA key that wraps this tenant's recording keys; null = the master key. */
  publicKey: string | null;
}

/** The settings as kept in `tenants.settings`; absent means null. */
interface StoredSettings {
  webhook_url?: string | null;
  webhook_secret?: SealedSecret | null;
  storage_url?: string | null;
  storage_credentials?: SealedCredentials | null;
  /** Set by the operator's key only: the bucket has no credentials of its own and the node's open it. */
  storage_node_identity?: boolean;
  /** Earlier buckets by URL, with their credentials (still sealed) or the operator's leave to use the node's. */
  past_storage?: Record<string, { credentials: SealedCredentials | null; node_identity: boolean }>;
  public_key?: string | null;
  sip_sources?: string[] | null;
}

type SealedCredentials = SealedSecret & { kind: 'gs' | 's3' };

/** A setting the API must refuse, naming the field at fault (400, or 403 for `ERR_FORBIDDEN`). */
export class TenantSettingError extends HttpError {
  constructor(field: string, message: string, code: 'ERR_VALIDATION' | 'ERR_FORBIDDEN' = 'ERR_VALIDATION') {
    super(code, `${field}: ${message}`, { field });
  }
}

/** Secrets are sealed bound to tenant and field: a value copied elsewhere in the table will not open. */
const secretContext = (tenantId: string, field: string) => `callrec-tenant:${tenantId}:${field}`;

function checkCredentials(kind: 'gs' | 's3', value: unknown): StorageCredentials {
  const check = CREDENTIAL_CHECKS[kind];
  if (!check.Check(value)) {
    const { field, message } = firstProblem(
      kind === 'gs' ? GcsCredentialsSchema : S3CredentialsSchema,
      check.Errors(value),
    );
    throw new TenantSettingError(
      field ? `storage_credentials.${field}` : 'storage_credentials',
      `${message} (${kind}:// credentials)`,
    );
  }
  if (kind === 's3') {
    const { access_key_id, secret_access_key, region, endpoint } = value as S3Credentials;
    return {
      kind,
      access_key_id,
      secret_access_key,
      ...(region === undefined ? {} : { region }),
      ...(endpoint === undefined ? {} : { endpoint }),
    };
  }
  const { client_email, private_key, project_id } = value as GcsCredentials;
  return { kind, client_email, private_key, project_id };
}

function checkStorageUrl(value: string, operator: boolean): void {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new TenantSettingError('storage_url', 'must be a URL');
  }
  if (url.protocol === 'file:') {
    // A local directory is on the server's own disk: only its operator may point writes there.
    if (!operator)
      throw new TenantSettingError(
        'storage_url',
        'only the operator key may set a file:// storage_url',
        'ERR_FORBIDDEN',
      );
    if (url.pathname === '/' || url.host !== '')
      throw new TenantSettingError('storage_url', 'must be file:///absolute/dir');
    return;
  }
  try {
    new BucketUrl(value, url.protocol as 'gs:' | 's3:');
  } catch (err) {
    throw new TenantSettingError('storage_url', (err as Error).message.replace(/^STORAGE_URL: /, ''));
  }
}

/** Normalises to SPKI PEM; refuses what `wrapForTenant` would refuse, at PATCH time rather than at the first recording. */
function checkPublicKey(pem: string): string {
  let key;
  try {
    key = createPublicKey(pem);
  } catch {
    throw new TenantSettingError('public_key', 'must be a PEM public key');
  }
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  if (key.asymmetricKeyType !== 'rsa' || bits < 2048)
    throw new TenantSettingError('public_key', 'must be an RSA key of at least 2048 bits');
  return key.export({ type: 'spki', format: 'pem' }).toString();
}

/** `sip_sources`: each an IPv4/IPv6 address or CIDR, normalised (`10.0.0.0/8`, `::1/128`). */
function checkSipSources(values: string[]): string[] {
  return values.map((value, i) => {
    const [address, bits, extra] = value.trim().split('/');
    const family = net.isIP(address);
    const max = family === 6 ? 128 : 32;
    if (
      family === 0 ||
      extra !== undefined ||
      (bits !== undefined && !(/^\d{1,3}$/.test(bits) && Number(bits) <= max))
    ) {
      throw new TenantSettingError(
        `sip_sources.${i}`,
        `must be an IP address or CIDR (192.0.2.10, 198.51.100.0/24, 2001:db8::/32), got "${value.slice(0, 64)}"`,
      );
    }
    return `${address}/${bits ?? max}`;
  });
}

/** Whether `address` (a SIP message's source) is one of the tenant's `sip_sources`. */
export function isSipSource(tenant: Tenant, address: string): boolean {
  const sources = (tenant.settings as StoredSettings).sip_sources;
  if (!sources?.length) return false;
  const family = net.isIPv6(address) ? 'ipv6' : 'ipv4';
  const list = new net.BlockList();
  for (const source of sources) {
    const [network, bits] = source.split('/');
    list.addSubnet(network, Number(bits), net.isIPv6(network) ? 'ipv6' : 'ipv4');
  }
  return list.check(address, family);
}

function checkWebhookUrl(value: string): void {
  try {
    new URL(value);
  } catch {
    throw new TenantSettingError('webhook_url', 'must be an http:// or https:// URL');
  }
}

/**
 * Refuses (400 `ERR_EGRESS_REFUSED`, naming the field) what the node could not reach under the
 * egress policy: a webhook to an internal host or over plain http, an S3 endpoint on an internal host.
 */
export async function checkSettingsEgress(egress: EgressPolicy, patch: TenantSettingsPatch): Promise<void> {
  if (patch.webhook_url && URL.canParse(patch.webhook_url)) await checkWebhookTarget(egress, patch.webhook_url);
  const endpoint = (patch.storage_credentials as { endpoint?: unknown } | null | undefined)?.endpoint;
  if (typeof endpoint === 'string' && URL.canParse(endpoint))
    await egress.check(endpoint, 'storage_credentials.endpoint', 'storage_endpoint');
}

/**
 * The stored settings after `patch`: validated, secrets sealed with the master keyring.
 * `operator` says whether the operator's key asks (only it may choose a local directory).
 * Throws `TenantSettingError`.
 */
export function applySettingsPatch(
  ring: MasterKeyring,
  tenantId: string,
  current: Record<string, unknown>,
  patch: TenantSettingsPatch,
  opts: { operator: boolean },
): Record<string, unknown> {
  const next: StoredSettings = { ...(current as StoredSettings) };
  if (patch.webhook_url !== undefined) {
    if (patch.webhook_url !== null) checkWebhookUrl(patch.webhook_url);
    next.webhook_url = patch.webhook_url;
  }
  if (patch.webhook_secret !== undefined) {
    if (patch.webhook_secret?.startsWith('whsec_') && !isStandardSecret(patch.webhook_secret)) {
      throw new TenantSettingError(
        'webhook_secret',
        'a whsec_ secret must be whsec_ followed by 24 to 64 bytes in base64 (the Standard Webhooks form)',
      );
    }
    next.webhook_secret =
      patch.webhook_secret === null
        ? null
        : sealSecret(ring, patch.webhook_secret, secretContext(tenantId, 'webhook_secret'));
  }
  if (patch.storage_url !== undefined) {
    if (patch.storage_url !== null) checkStorageUrl(patch.storage_url, opts.operator);
    next.storage_url = patch.storage_url;
  }
  if (
    patch.storage_url !== undefined &&
    (current as StoredSettings).storage_url &&
    patch.storage_url !== (current as StoredSettings).storage_url
  ) {
    // The bucket the tenant leaves keeps what opened it: its recordings stay there, readable.
    const was = current as StoredSettings;
    next.past_storage = {
      ...was.past_storage,
      [was.storage_url!]: {
        credentials: was.storage_credentials ?? null,
        node_identity: was.storage_node_identity === true,
      },
    };
  }
  const scheme = next.storage_url ? (new URL(next.storage_url).protocol.slice(0, -1) as 'file' | 'gs' | 's3') : null;
  if (patch.storage_credentials !== undefined && patch.storage_credentials !== null) {
    if (scheme !== 'gs' && scheme !== 's3')
      throw new TenantSettingError('storage_credentials', 'only a gs:// or s3:// storage_url takes credentials');
    const { kind, ...credentials } = checkCredentials(scheme, patch.storage_credentials);
    next.storage_credentials = {
      kind,
      ...sealSecret(ring, credentials, secretContext(tenantId, 'storage_credentials')),
    };
  } else if (patch.storage_credentials === null) {
    next.storage_credentials = null;
  } else if (next.storage_credentials && next.storage_credentials.kind !== scheme) {
    // Kept credentials for another kind of store would be sent to the wrong service.
    throw new TenantSettingError(
      'storage_credentials',
      `the stored credentials are for ${next.storage_credentials.kind}://; send new ones or null with this storage_url`,
    );
  }
  if (patch.storage_url !== undefined || patch.storage_credentials !== undefined) {
    const bucket = scheme === 'gs' || scheme === 's3';
    // The node's cloud identity may reach buckets no tenant should: a tenant's bucket brings its own credentials.
    if (bucket && !next.storage_credentials && !opts.operator) {
      throw new TenantSettingError(
        'storage_credentials',
        "a tenant's own bucket needs its own credentials (only the operator key may set one the node's credentials open)",
      );
    }
    next.storage_node_identity = bucket && !next.storage_credentials;
  }
  if (patch.public_key !== undefined)
    next.public_key = patch.public_key === null ? null : checkPublicKey(patch.public_key);
  if (patch.sip_sources !== undefined)
    next.sip_sources = patch.sip_sources === null ? null : checkSipSources(patch.sip_sources);
  return next as Record<string, unknown>;
}

/** A tenant as the API shows it: secrets only as whether they are set. */
export function tenantView(tenant: Tenant) {
  const s = tenant.settings as StoredSettings;
  return {
    id: tenant.id,
    name: tenant.name,
    created_at: tenant.createdAt,
    webhook_url: s.webhook_url ?? null,
    webhook_secret_set: Boolean(s.webhook_secret),
    storage_url: s.storage_url ?? null,
    storage_credentials_set: Boolean(s.storage_credentials),
    public_key: s.public_key ?? null,
    sip_sources: s.sip_sources ?? [],
  };
}

/** Decrypts a tenant's settings; all null for an unknown tenant. Throws `ERR_DECRYPT`/`ERR_UNKNOWN_KEY` when a secret cannot be opened. */
export async function loadTenantSettings(
  store: Pick<Store, 'tenants'>,
  ring: MasterKeyring,
  tenantId: string,
): Promise<TenantSettings> {
  const s = ((await store.tenants.get(tenantId))?.settings ?? {}) as StoredSettings;
  const open = (credentials: SealedCredentials | null | undefined) =>
    credentials
      ? ({
          kind: credentials.kind,
          ...(openSecret(ring, credentials, secretContext(tenantId, 'storage_credentials')) as object),
        } as StorageCredentials)
      : null;
  return {
    webhookUrl: s.webhook_url ?? null,
    webhookSecret: s.webhook_secret
      ? (openSecret(ring, s.webhook_secret, secretContext(tenantId, 'webhook_secret')) as string)
      : null,
    storageUrl: s.storage_url ?? null,
    storageCredentials: open(s.storage_credentials),
    storageNodeIdentity: s.storage_node_identity === true,
    pastStorage: Object.fromEntries(
      Object.entries(s.past_storage ?? {}).map(([url, past]) => [
        url,
        { credentials: open(past.credentials), nodeIdentity: past.node_identity },
      ]),
    ),
    publicKey: s.public_key ?? null,
  };
}

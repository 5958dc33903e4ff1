import { generateKeyPairSync } from 'node:crypto';
import pg from 'pg';
import SqliteDatabase from 'better-sqlite3';
import { MasterKeyring } from '../../src/crypto/keys.js';
import { loadTenantSettings } from '../../src/tenants/settings.js';
import { TEST_DB_KINDS } from '../helpers/db.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const rsaPem = (bits: number) =>
  generateKeyPairSync('rsa', { modulusLength: bits }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
const SECRET = 'whsec-0123456789abcdef';
const S3_SECRET = 'aws-secret-key-material-42';

/** The tenant row exactly as the database holds it, read around the store. */
async function rawSettings(t: TestServer, tenantId: string): Promise<string> {
  const url = t.cluster.databaseUrl;
  if (url.startsWith('sqlite://')) {
    const db = new SqliteDatabase(url.slice('sqlite://'.length), { readonly: true });
    try {
      return (db.prepare('select settings from tenants where id = ?').get(tenantId) as { settings: string }).settings;
    } finally {
      db.close();
    }
  }
  const parsed = new URL(url);
  const schema = parsed.searchParams.get('schema')!;
  parsed.searchParams.delete('schema');
  const client = new pg.Client({ connectionString: parsed.href });
  await client.connect();
  try {
    return (await client.query(`select settings from "${schema}".tenants where id = $1`, [tenantId])).rows[0].settings;
  } finally {
    await client.end();
  }
}

describe.each(TEST_DB_KINDS)('tenant settings API on %s', (kind) => {
  let t: TestServer;
  let operator: string;
  let otherAdmin: string;
  let reader: string;
  const call = (secret: string, method: string, pathname: string, body?: unknown) =>
    fetch(t.server.url + pathname, {
      method,
      headers: {
        authorization: `Bearer ${secret}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    }).then(async (res) => ({ status: res.status, body: (await res.json()) as any }));

  beforeAll(async () => {
    t = await startTestServer({ db: kind });
    const { store } = t.server;
    await store.tenants.ensure('acme', 'Acme');
    operator = (await store.keys.create({ tenantId: 'default', name: 'op', scopes: ['admin'], operator: true })).secret;
    otherAdmin = (await store.keys.create({ tenantId: 'acme', name: 'acme admin', scopes: ['admin'] })).secret;
    reader = (await store.keys.create({ tenantId: 'default', name: 'reader', scopes: ['recordings:read'] })).secret;
  });
  afterAll(() => t.close());

  test('PATCH stores settings, seals secrets at rest and returns them redacted; GET shows the same', async () => {
    const publicKey = rsaPem(2048);
    const res = await call(t.key, 'PATCH', '/api/tenants/default', {
      webhook_url: 'https://hooks.example.com/callrec',
      webhook_secret: SECRET,
      storage_url: 's3://acme-recordings/calls',
      storage_credentials: { access_key_id: 'AKIAEXAMPLE', secret_access_key: S3_SECRET, region: 'eu-west-1' },
      public_key: publicKey,
    });
    const view = {
      id: 'default',
      webhook_url: 'https://hooks.example.com/callrec',
      webhook_secret_set: true,
      storage_url: 's3://acme-recordings/calls',
      storage_credentials_set: true,
      public_key: publicKey,
    };
    expect(res).toMatchObject({ status: 200, body: view });
    expect(JSON.stringify(res.body)).not.toContain(SECRET);
    expect(JSON.stringify(res.body)).not.toContain(S3_SECRET);
    expect(await call(t.key, 'GET', '/api/tenants/default')).toMatchObject({ status: 200, body: view });

    const raw = await rawSettings(t, 'default');
    expect(raw).toContain('hooks.example.com');
    expect(raw).not.toContain(SECRET);
    expect(raw).not.toContain(S3_SECRET);
    expect(raw).not.toContain('AKIAEXAMPLE');

    const ring = await MasterKeyring.load({ dataDir: t.dataDir, masterKey: t.cluster.masterKey });
    expect(await loadTenantSettings(t.server.store, ring, 'default')).toEqual({
      webhookUrl: 'https://hooks.example.com/callrec',
      webhookSecret: SECRET,
      storageUrl: 's3://acme-recordings/calls',
      storageCredentials: {
        kind: 's3',
        access_key_id: 'AKIAEXAMPLE',
        secret_access_key: S3_SECRET,
        region: 'eu-west-1',
      },
      storageNodeIdentity: false,
      pastStorage: {},
      publicKey,
    });
  });

  test('absent fields are kept, null clears; a bucket of another kind needs new credentials', async () => {
    await call(t.key, 'PATCH', '/api/tenants/default', {
      webhook_url: 'https://a.example.com/h',
      webhook_secret: SECRET,
    });
    const res = await call(t.key, 'PATCH', '/api/tenants/default', { webhook_secret: null, public_key: null });
    expect(res.body).toMatchObject({
      webhook_url: 'https://a.example.com/h',
      webhook_secret_set: false,
      public_key: null,
    });

    const wrongKind = await call(t.key, 'PATCH', '/api/tenants/default', { storage_url: 'gs://other-bucket' });
    expect(wrongKind).toMatchObject({
      status: 400,
      body: { error: { code: 'ERR_VALIDATION', field: 'storage_credentials' } },
    });
    const gcs = await call(t.key, 'PATCH', '/api/tenants/default', {
      storage_url: 'gs://other-bucket',
      // A pasted service-account file: the extra fields are accepted and dropped.
      storage_credentials: {
        type: 'service_account',
        client_email: 'sa@p.iam.gserviceaccount.com',
        private_key: '-----BEGIN PRIVATE KEY-----x',
        project_id: 'p',
      },
    });
    expect(gcs).toMatchObject({
      status: 200,
      body: { storage_url: 'gs://other-bucket', storage_credentials_set: true },
    });
    const ring = await MasterKeyring.load({ dataDir: t.dataDir, masterKey: t.cluster.masterKey });
    expect((await loadTenantSettings(t.server.store, ring, 'default')).storageCredentials).toEqual({
      kind: 'gs',
      client_email: 'sa@p.iam.gserviceaccount.com',
      private_key: '-----BEGIN PRIVATE KEY-----x',
      project_id: 'p',
    });
    const cleared = await call(t.key, 'PATCH', '/api/tenants/default', {
      storage_url: null,
      storage_credentials: null,
    });
    expect(cleared.body).toMatchObject({ storage_url: null, storage_credentials_set: false });
  });

  test.each([
    [{ nickname: 'x' }, 'nickname'],
    [{ webhook_url: 'ftp://example.com/h' }, 'webhook_url'],
    [{ webhook_secret: 'short' }, 'webhook_secret'],
    [{ storage_url: 'azure://bucket' }, 'storage_url'],
    [{ storage_url: 's3://' }, 'storage_url'],
    [{ storage_url: 's3://b', storage_credentials: { access_key_id: 'A' } }, 'storage_credentials.secret_access_key'],
    [
      { storage_url: 's3://b', storage_credentials: { access_key_id: 'A', secret_access_key: 'B', color: 'red' } },
      'storage_credentials.color',
    ],
    [{ storage_url: null, storage_credentials: { access_key_id: 'A', secret_access_key: 'B' } }, 'storage_credentials'],
    [{ public_key: 'not a key' }, 'public_key'],
    [{ public_key: rsaPem(1024) }, 'public_key'],
    [
      {
        public_key: generateKeyPairSync('ec', { namedCurve: 'P-256' })
          .publicKey.export({ type: 'spki', format: 'pem' })
          .toString(),
      },
      'public_key',
    ],
    [{ sip_sources: ['10.0.0.0/8', 'sbc.example.com'] }, 'sip_sources.1'],
    [{ sip_sources: ['10.0.0.0/33'] }, 'sip_sources.0'],
    [{ sip_sources: '10.0.0.1' }, 'sip_sources'],
  ])('400 naming the field for %j', async (body, field) => {
    const before = await rawSettings(t, 'default');
    const res = await call(t.key, 'PATCH', '/api/tenants/default', body);
    expect(res).toMatchObject({ status: 400, body: { error: { code: 'ERR_VALIDATION', field } } });
    expect(await rawSettings(t, 'default')).toBe(before);
  });

  test('sip_sources: addresses and CIDRs kept normalised, shown, cleared by null', async () => {
    const set = await call(t.key, 'PATCH', '/api/tenants/default', {
      sip_sources: ['192.0.2.10', '198.51.100.0/24', '2001:db8::/32'],
    });
    expect(set).toMatchObject({
      status: 200,
      body: { sip_sources: ['192.0.2.10/32', '198.51.100.0/24', '2001:db8::/32'] },
    });
    expect((await call(t.key, 'PATCH', '/api/tenants/default', { sip_sources: null })).body.sip_sources).toEqual([]);
  });

  test('another tenant is a 404 for an admin; the operator manages any tenant; only admin keys', async () => {
    expect(await call(otherAdmin, 'GET', '/api/tenants/default')).toMatchObject({
      status: 404,
      body: { error: { code: 'ERR_NOT_FOUND' } },
    });
    expect(
      await call(otherAdmin, 'PATCH', '/api/tenants/default', { webhook_url: 'https://evil.example.com' }),
    ).toMatchObject({ status: 404 });
    expect((await call(t.key, 'GET', '/api/tenants/default')).body.webhook_url).not.toBe('https://evil.example.com');
    expect(await call(t.key, 'PATCH', '/api/tenants/acme', { webhook_url: 'https://evil.example.com' })).toMatchObject({
      status: 404,
    });

    const byOperator = await call(operator, 'PATCH', '/api/tenants/acme', {
      webhook_url: 'https://acme.example.com/h',
    });
    expect(byOperator).toMatchObject({ status: 200, body: { id: 'acme', webhook_url: 'https://acme.example.com/h' } });
    expect(await call(otherAdmin, 'GET', '/api/tenants/acme')).toMatchObject({
      status: 200,
      body: { webhook_url: 'https://acme.example.com/h' },
    });
    expect(await call(operator, 'GET', '/api/tenants/nobody')).toMatchObject({ status: 404 });
    expect(await call(operator, 'PATCH', '/api/tenants/nobody', { webhook_url: null })).toMatchObject({ status: 404 });
    expect(await call(reader, 'GET', '/api/tenants/default')).toMatchObject({ status: 403 });
  });

  test('a local directory is for the operator only', async () => {
    const byAdmin = await call(otherAdmin, 'PATCH', '/api/tenants/acme', { storage_url: 'file:///etc' });
    expect(byAdmin).toMatchObject({ status: 403, body: { error: { code: 'ERR_FORBIDDEN', field: 'storage_url' } } });
    const byOperator = await call(operator, 'PATCH', '/api/tenants/acme', { storage_url: `file://${t.dataDir}/acme` });
    expect(byOperator).toMatchObject({ status: 200, body: { storage_url: `file://${t.dataDir}/acme` } });
  });

  test("a tenant's bucket never borrows the node's identity: a tenant admin must give credentials; only the operator may leave them out", async () => {
    const { storage } = t.server;
    const credentials = { access_key_id: 'AKIAACME', secret_access_key: 'acme-secret-key-material' };
    for (const body of [{ storage_url: 's3://node-bucket/acme' }, { storage_url: 'gs://node-bucket/acme' }]) {
      expect(await call(otherAdmin, 'PATCH', '/api/tenants/acme', body)).toMatchObject({
        status: 400,
        body: { error: { code: 'ERR_VALIDATION', field: 'storage_credentials' } },
      });
    }
    expect(
      await call(otherAdmin, 'PATCH', '/api/tenants/acme', {
        storage_url: 's3://acme-bucket/one',
        storage_credentials: credentials,
      }),
    ).toMatchObject({ status: 200 });
    // Clearing the credentials of a bucket is leaving them out.
    expect(await call(otherAdmin, 'PATCH', '/api/tenants/acme', { storage_credentials: null })).toMatchObject({
      status: 400,
      body: { error: { field: 'storage_credentials' } },
    });
    await expect(storage.forTenant('acme')).resolves.toMatchObject({ url: 's3://acme-bucket/one' });

    // A bucket set without credentials before this rule (or by hand) is not opened with the node's.
    await t.server.store.tenants.updateSettings('acme', (current) => ({
      ...current,
      storage_url: 's3://node-bucket/acme',
      storage_credentials: null,
      storage_node_identity: undefined,
    }));
    await expect(storage.forTenant('acme')).rejects.toMatchObject({
      code: 'ERR_STORAGE_REFUSED',
      message: expect.stringMatching(/check the tenant's storage_url and storage_credentials$/),
    });

    // The operator may, and the tenant's later unrelated changes keep that leave.
    expect(await call(operator, 'PATCH', '/api/tenants/acme', { storage_url: 's3://node-bucket/acme' })).toMatchObject({
      status: 200,
    });
    expect(await call(otherAdmin, 'PATCH', '/api/tenants/acme', { webhook_url: null })).toMatchObject({ status: 200 });
    await expect(storage.forTenant('acme')).resolves.toMatchObject({ url: 's3://node-bucket/acme' });

    // Moving to its own bucket, the tenant's recordings in the old one stay readable, with what opened it.
    expect(
      await call(otherAdmin, 'PATCH', '/api/tenants/acme', {
        storage_url: 's3://acme-bucket/two',
        storage_credentials: credentials,
      }),
    ).toMatchObject({ status: 200 });
    await expect(
      storage.forRecording({ tenantId: 'acme', storageUrl: 's3://node-bucket/acme' }),
    ).resolves.toMatchObject({ url: 's3://node-bucket/acme' });
    // A bucket the tenant never had gets nothing.
    await expect(
      storage.forRecording({ tenantId: 'acme', storageUrl: 's3://someone-elses/bucket' }),
    ).rejects.toMatchObject({ code: 'ERR_STORAGE_REFUSED' });
  });
});

import { constants, createHash, generateKeyPairSync, privateDecrypt, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { MasterKeyring, newDataKey, rewrap, wrapForTenant } from '../../src/crypto/keys.js';

let dataDir: string;
beforeEach(async () => {
  dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'callrec-keys-'));
});
afterEach(() => fs.rm(dataDir, { recursive: true, force: true }));

function idOf(base64: string): string {
  return createHash('sha256').update(Buffer.from(base64, 'base64')).digest('hex').slice(0, 16);
}

test('newDataKey gives distinct 32-byte keys', () => {
  const [a, b] = [newDataKey(), newDataKey()];
  expect(a).toHaveLength(32);
  expect(a.equals(b)).toBe(false);
});

describe('MasterKeyring from $DATA_DIR/master.key', () => {
  test('generates the key on first use (mode 0600) and reuses it after', async () => {
    const ring = await MasterKeyring.load({ dataDir });
    const file = path.join(dataDir, 'master.key');
    const stat = await fs.stat(file);
    expect(stat.mode & 0o777).toBe(0o600);
    const text = await fs.readFile(file, 'utf8');
    expect(Buffer.from(text, 'base64')).toHaveLength(32);
    expect(ring.currentKeyId).toBe(idOf(text));
    expect((await MasterKeyring.load({ dataDir })).currentKeyId).toBe(ring.currentKeyId);
  });

  test('processes starting together agree on one generated key', async () => {
    const rings = await Promise.all(Array.from({ length: 8 }, () => MasterKeyring.load({ dataDir })));
    expect(new Set(rings.map((r) => r.currentKeyId)).size).toBe(1);
    expect((await fs.readdir(dataDir)).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });

  test('wrap/unwrap round-trips; a tampered or relabelled wrap fails', async () => {
    const ring = await MasterKeyring.load({ dataDir });
    const dataKey = newDataKey();
    const wrapped = ring.wrap(dataKey);
    expect(wrapped.keyId).toBe(ring.currentKeyId);
    expect(wrapped.wrapped).not.toContain(dataKey.toString('base64'));
    expect(ring.unwrap(wrapped).equals(dataKey)).toBe(true);
    expect(ring.wrap(dataKey).wrapped).not.toBe(wrapped.wrapped); // random nonce

    const bytes = Buffer.from(wrapped.wrapped, 'base64');
    bytes[20] ^= 1;
    expect(() => ring.unwrap({ keyId: wrapped.keyId, wrapped: bytes.toString('base64') })).toThrow(
      expect.objectContaining({ code: 'ERR_DECRYPT' }),
    );
    expect(() => ring.unwrap({ keyId: '0123456789abcdef', wrapped: wrapped.wrapped })).toThrow(
      expect.objectContaining({ code: 'ERR_UNKNOWN_KEY' }),
    );
  });

  test('rotation: keys wrapped before and after both unwrap, also after a reload; rewrap moves a key to the new master', async () => {
    const ring = await MasterKeyring.load({ dataDir });
    const before = newDataKey();
    const wrappedBefore = ring.wrap(before);

    const { oldKeyId, newKeyId } = await ring.rotate();
    expect(oldKeyId).toBe(wrappedBefore.keyId);
    expect(newKeyId).not.toBe(oldKeyId);
    expect(ring.currentKeyId).toBe(newKeyId);
    expect(idOf(await fs.readFile(path.join(dataDir, 'master.key'), 'utf8'))).toBe(newKeyId);
    const retired = path.join(dataDir, 'master-keys', `${oldKeyId}.key`);
    expect((await fs.stat(retired)).mode & 0o777).toBe(0o600);

    const after = newDataKey();
    const wrappedAfter = ring.wrap(after);
    expect(wrappedAfter.keyId).toBe(newKeyId);

    const reloaded = await MasterKeyring.load({ dataDir });
    expect(reloaded.currentKeyId).toBe(newKeyId);
    expect(reloaded.keyIds.sort()).toEqual([oldKeyId, newKeyId].sort());
    for (const r of [ring, reloaded]) {
      expect(r.unwrap(wrappedBefore).equals(before)).toBe(true);
      expect(r.unwrap(wrappedAfter).equals(after)).toBe(true);
    }

    const moved = rewrap(wrappedBefore, reloaded);
    expect(moved.keyId).toBe(newKeyId);
    expect(reloaded.unwrap(moved).equals(before)).toBe(true);
    expect(rewrap(moved, reloaded)).toBe(moved); // already current: unchanged

    // Once every key is rewrapped the operator may delete the retired key; the moved one still opens.
    await fs.rm(retired);
    const pruned = await MasterKeyring.load({ dataDir });
    expect(pruned.unwrap(moved).equals(before)).toBe(true);
    expect(() => pruned.unwrap(wrappedBefore)).toThrow(expect.objectContaining({ code: 'ERR_UNKNOWN_KEY' }));
  });

  test('a malformed key file is a configuration error', async () => {
    await fs.writeFile(path.join(dataDir, 'master.key'), 'c2hvcnQ=');
    await expect(MasterKeyring.load({ dataDir })).rejects.toEqual(expect.objectContaining({ code: 'ERR_CONFIG' }));
  });
});

describe('MasterKeyring from CALLREC_MASTER_KEY', () => {
  test('uses the variable without writing it to disk, and keeps an earlier master.key readable', async () => {
    const fileRing = await MasterKeyring.load({ dataDir });
    const old = newDataKey();
    const wrappedOld = fileRing.wrap(old);

    const envKey = randomBytes(32).toString('base64');
    const ring = await MasterKeyring.load({ dataDir, masterKey: envKey });
    expect(ring.currentKeyId).toBe(idOf(envKey));
    expect(ring.wrap(newDataKey()).keyId).toBe(idOf(envKey));
    expect(ring.unwrap(wrappedOld).equals(old)).toBe(true);
    for (const name of await fs.readdir(dataDir, { recursive: true })) {
      const file = path.join(dataDir, name);
      if ((await fs.stat(file)).isFile()) expect(await fs.readFile(file, 'utf8')).not.toContain(envKey);
    }
  });

  test('rotation is the operator’s: rotate() refuses; the old value in master-keys/ keeps old keys readable', async () => {
    const oldEnv = randomBytes(32).toString('base64');
    const ring = await MasterKeyring.load({ dataDir, masterKey: oldEnv });
    const dataKey = newDataKey();
    const wrapped = ring.wrap(dataKey);
    await expect(ring.rotate()).rejects.toEqual(
      expect.objectContaining({ code: 'ERR_CONFIG', message: expect.stringContaining('master-keys') }),
    );

    const newEnv = randomBytes(32).toString('base64');
    // Switching the variable without keeping the old value loses the old recordings' keys.
    await expect(MasterKeyring.load({ dataDir, masterKey: newEnv }).then((r) => r.unwrap(wrapped))).rejects.toEqual(
      expect.objectContaining({ code: 'ERR_UNKNOWN_KEY' }),
    );

    await fs.mkdir(path.join(dataDir, 'master-keys'));
    await fs.writeFile(path.join(dataDir, 'master-keys', 'previous.key'), `${oldEnv}\n`);
    const rotated = await MasterKeyring.load({ dataDir, masterKey: newEnv });
    expect(rotated.currentKeyId).toBe(idOf(newEnv));
    expect(rotated.unwrap(wrapped).equals(dataKey)).toBe(true);
    const moved = rewrap(wrapped, rotated);
    expect(moved.keyId).toBe(idOf(newEnv));
    expect(rotated.unwrap(moved).equals(dataKey)).toBe(true);
  });
});

describe('wrapForTenant', () => {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const publicPem = publicKey.export({ type: 'spki', format: 'pem' }) as string;

  test('only the tenant’s private key unwraps (RSA-OAEP-SHA256); the id fingerprints the public key', async () => {
    const dataKey = newDataKey();
    const wrapped = wrapForTenant(dataKey, publicPem);
    const fingerprint = createHash('sha256')
      .update(publicKey.export({ type: 'spki', format: 'der' }))
      .digest('hex')
      .slice(0, 16);
    expect(wrapped.keyId).toBe(`tenant:${fingerprint}`);
    const unwrapped = privateDecrypt(
      { key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' },
      Buffer.from(wrapped.wrapped, 'base64'),
    );
    expect(unwrapped.equals(dataKey)).toBe(true);

    const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    expect(() =>
      privateDecrypt(
        { key: other, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' },
        Buffer.from(wrapped.wrapped, 'base64'),
      ),
    ).toThrow();

    const ring = await MasterKeyring.load({ dataDir });
    expect(() => ring.unwrap(wrapped)).toThrow(expect.objectContaining({ code: 'ERR_UNKNOWN_KEY' }));
    expect(rewrap(wrapped, ring)).toBe(wrapped);
  });

  test('rejects keys that are not RSA ≥ 2048 bits', () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({
      type: 'spki',
      format: 'pem',
    }) as string;
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({
      type: 'spki',
      format: 'pem',
    }) as string;
    for (const pem of [ec, small, 'not a key']) {
      expect(() => wrapForTenant(newDataKey(), pem)).toThrow(expect.objectContaining({ code: 'ERR_BAD_KEY' }));
    }
  });
});

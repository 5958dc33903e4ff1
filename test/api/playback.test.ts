import path from 'node:path';
import { PlaybackTokens } from '../../src/auth/playback.js';
import { MasterKeyring } from '../../src/crypto/keys.js';
import { createLogger } from '../../src/log.js';
import { peaksKeyFor } from '../../src/recording/peaks.js';
import { readFixture, type Fixture } from '../../src/replay/fixture.js';
import { replayFixture } from '../../src/replay/client.js';
import type { Recording } from '../../src/store/index.js';
import { createRetentionProcessor } from '../../workers/retention.js';
import { Evidence } from '../../src/evidence/index.js';
import { startTestServer, uniqueCallId, type TestServer } from '../helpers/server.js';

interface ErrorBody {
  error: { code: string; message: string };
}
interface PlaybackUrl {
  url: string;
  expires_at: string;
}
interface Peaks {
  duration: number;
  channels: string[];
  peaks: number[][];
}

/**
 * The dashboard's player and waveform against a real server: calls replayed from a dual-channel
 * fixture and finalized by the real worker, then played through short-lived playback URLs.
 */
describe('playback URLs and waveform peaks', () => {
  let ts: TestServer;
  let fixture: Fixture;
  /** A key that may only listen: it mints the playback URLs. */
  let listener: { id: string; secret: string };

  beforeAll(async () => {
    fixture = await readFixture(path.join(import.meta.dirname, '../../fixtures/twilio-fork-tones.jsonl'));
    ts = await startTestServer();
    await ts.agent('dash', {
      enabled: true,
      auto_record: true,
      consent_prompt: false,
      dual_channel: true,
      format: 'mp3',
    });
    const { key, secret } = await ts.server.store.keys.create({
      tenantId: ts.tenantId,
      name: 'listener',
      scopes: ['recordings:read'],
    });
    listener = { id: key.id, secret };
  });
  afterAll(() => ts?.close());

  /** A call streamed from the fixture and finalized by the worker. */
  async function recordedCall(label: string): Promise<{ callId: string; recording: Recording }> {
    const callId = uniqueCallId(label);
    await replayFixture(fixture, {
      url: `${ts.wsUrl}/media/twilio`,
      agentId: 'dash',
      token: ts.key,
      callId,
      speed: 'max',
    });
    const recording = await ts.recording(callId);
    expect(recording.status).toBe('ready');
    return { callId, recording };
  }

  const get = (url: string, headers: Record<string, string> = {}) => fetch(ts.server.url + url, { headers });
  const asListener = (url: string, init: RequestInit = {}) =>
    fetch(ts.server.url + url, {
      ...init,
      headers: { authorization: `Bearer ${listener.secret}`, 'content-type': 'application/json', ...init.headers },
    });
  async function playbackUrl(callId: string, body: Record<string, unknown> = {}): Promise<PlaybackUrl> {
    const res = await asListener(`/api/calls/${callId}/recording/url`, { method: 'POST', body: JSON.stringify(body) });
    expect(res.status).toBe(200);
    return (await res.json()) as PlaybackUrl;
  }
  async function expectError(res: Response, status: number, code: string): Promise<void> {
    expect(res.status).toBe(status);
    expect(((await res.json()) as ErrorBody).error.code).toBe(code);
  }

  test('a playback URL streams the recording without Authorization, seekable with Range, each use logged as a listen by the minting key', async () => {
    const { callId, recording } = await recordedCall('play');
    const before = Date.now();
    const { url, expires_at } = await playbackUrl(callId);
    expect(url).toMatch(new RegExp(`^/api/calls/${callId}/recording\\?format=mp3&token=[A-Za-z0-9_.-]+$`));
    expect(url).not.toContain(listener.secret);
    expect(url).not.toContain(ts.key);
    expect(Date.parse(expires_at) - before).toBeGreaterThan(9 * 60_000);
    expect(Date.parse(expires_at) - before).toBeLessThanOrEqual(10 * 60_000 + 1000);

    const whole = await get(url);
    expect(whole.status).toBe(200);
    expect(whole.headers.get('content-type')).toBe('audio/mpeg');
    const bytes = Buffer.from(await whole.arrayBuffer());
    const viaKey = Buffer.from(await (await ts.api(`/api/calls/${callId}/recording`)).arrayBuffer());
    expect(bytes.equals(viaKey)).toBe(true);
    expect(bytes.length).toBe(recording.byteSize);

    // Seeking: the same 206 as with a key.
    const ranged = await get(url, { range: 'bytes=1000-1999' });
    expect(ranged.status).toBe(206);
    expect(ranged.headers.get('content-range')).toBe(`bytes 1000-1999/${bytes.length}`);
    expect(Buffer.from(await ranged.arrayBuffer()).equals(bytes.subarray(1000, 2000))).toBe(true);

    const log = await ts.server.store.accessLog.list(ts.tenantId, callId);
    const listens = log.filter((entry) => entry.keyId === listener.id);
    expect(listens.map((entry) => [entry.format, entry.range])).toEqual([
      ['mp3', null],
      ['mp3', 'bytes=1000-1999'],
    ]);
    expect(listens.every((entry) => entry.recordingId === recording.id)).toBe(true);
  });

  test('a URL for another format transcodes and may ask for a download', async () => {
    const { callId } = await recordedCall('wav');
    const { url } = await playbackUrl(callId, { format: 'wav', download: true });
    expect(url).toContain('format=wav');
    const res = await get(url);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('audio/wav');
    expect(res.headers.get('content-disposition')).toBe(`attachment; filename="${callId}.wav"`);
  });

  test('a token plays only its own call, format and recording, and only while it and its key are valid', async () => {
    const { callId } = await recordedCall('bound');
    const { callId: otherCall } = await recordedCall('other');
    const { url } = await playbackUrl(callId);
    const token = new URL(url, ts.server.url).searchParams.get('token')!;

    await expectError(
      await get(`/api/calls/${otherCall}/recording?format=mp3&token=${token}`),
      403,
      'ERR_TOKEN_MISMATCH',
    );
    await expectError(await get(`/api/calls/${callId}/recording?format=wav&token=${token}`), 403, 'ERR_TOKEN_MISMATCH');
    // It opens the audio route only: not the call's metadata or waveform.
    await expectError(await get(`/api/calls/${callId}?token=${token}`), 401, 'ERR_UNAUTHORIZED');
    await expectError(await get(`/api/calls/${callId}/recording/peaks?token=${token}`), 401, 'ERR_UNAUTHORIZED');

    const [version, claims, signature] = token.split('.');
    const forged = Buffer.from(claims, 'base64url').toString().replace(callId, otherCall);
    await expectError(
      await get(
        `/api/calls/${otherCall}/recording?token=${version}.${Buffer.from(forged).toString('base64url')}.${signature}`,
      ),
      401,
      'ERR_TOKEN_INVALID',
    );
    await expectError(await get(`/api/calls/${callId}/recording?token=garbage`), 401, 'ERR_TOKEN_INVALID');

    // Any node holding the cluster's master key verifies (and could have minted) the token.
    const recording = (await ts.server.store.recordings.getByCall(ts.tenantId, callId))!;
    const tokens = new PlaybackTokens(
      await MasterKeyring.load({ dataDir: path.join(ts.dataDir, 'other-node'), masterKey: ts.cluster.masterKey }),
    );
    const grant = {
      tenantId: ts.tenantId,
      keyId: listener.id,
      callId,
      recordingId: recording.id,
      format: 'mp3' as const,
    };
    expect((await get(`/api/calls/${callId}/recording?token=${tokens.mint(grant).token}`)).status).toBe(200);
    await expectError(
      await get(`/api/calls/${callId}/recording?token=${tokens.mint(grant, -1).token}`),
      401,
      'ERR_TOKEN_EXPIRED',
    );
    // Signed under a master key this cluster does not hold.
    const stranger = new PlaybackTokens(await MasterKeyring.load({ dataDir: path.join(ts.dataDir, 'stranger') }));
    await expectError(
      await get(`/api/calls/${callId}/recording?token=${stranger.mint(grant).token}`),
      401,
      'ERR_TOKEN_INVALID',
    );

    // Revoking the minting key ends its URLs.
    const { key, secret } = await ts.server.store.keys.create({
      tenantId: ts.tenantId,
      name: 'soon revoked',
      scopes: ['recordings:read'],
    });
    const minted = await fetch(`${ts.server.url}/api/calls/${callId}/recording/url`, {
      method: 'POST',
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
      body: '{}',
    });
    const revocable = ((await minted.json()) as PlaybackUrl).url;
    expect((await get(revocable)).status).toBe(200);
    await ts.server.store.keys.revoke(ts.tenantId, key.id);
    await expectError(await get(revocable), 401, 'ERR_TOKEN_REVOKED');
  });

  test('minting needs recordings:read, a ready recording, and a well-formed body', async () => {
    const { callId } = await recordedCall('mint');
    const { secret } = await ts.server.store.keys.create({
      tenantId: ts.tenantId,
      name: 'control only',
      scopes: ['calls:control'],
    });
    const refused = await fetch(`${ts.server.url}/api/calls/${callId}/recording/url`, {
      method: 'POST',
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
      body: '{}',
    });
    await expectError(refused, 403, 'ERR_FORBIDDEN');
    await expectError(
      await asListener(`/api/calls/no-such-call/recording/url`, { method: 'POST', body: '{}' }),
      404,
      'ERR_NOT_FOUND',
    );
    const badFormat = await asListener(`/api/calls/${callId}/recording/url`, {
      method: 'POST',
      body: JSON.stringify({ format: 'flac' }),
    });
    expect(badFormat.status).toBe(400);
    expect(((await badFormat.json()) as { error: { field: string } }).error.field).toBe('format');
    const unknownField = await asListener(`/api/calls/${callId}/recording/url`, {
      method: 'POST',
      body: JSON.stringify({ ttl: 60 }),
    });
    expect(unknownField.status).toBe(400);
  });

  test('peaks: one lane per leg, each showing its own leg, at most 100 buckets a second', async () => {
    const { callId, recording } = await recordedCall('peaks');
    const res = await asListener(`/api/calls/${callId}/recording/peaks`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as Peaks;
    expect(body.channels).toEqual(['caller', 'agent']);
    expect(body.duration).toBeCloseTo(recording.durationMs! / 1000, 2);
    expect(body.peaks).toHaveLength(2);
    const buckets = Math.ceil(body.duration * 100);
    expect(body.peaks.map((lane) => lane.length)).toEqual([buckets, buckets]);
    for (const value of body.peaks.flat()) {
      expect(value).toBeGreaterThanOrEqual(0);
      expect(value).toBeLessThanOrEqual(1);
      expect(Math.round(value * 1000) / 1000).toBe(value);
    }
    // 10 ms buckets: in the middle of each burst its own leg's lane is loud and the other's silent.
    for (const burst of fixture.meta.bursts) {
      const overlaps = fixture.meta.bursts.some(
        (b) =>
          b.leg !== burst.leg &&
          b.startMs < burst.startMs + burst.durationMs &&
          burst.startMs < b.startMs + b.durationMs,
      );
      if (overlaps) continue;
      const bucket = Math.floor((burst.startMs + burst.durationMs / 2) / 10);
      const [own, other] = burst.leg === 'caller' ? [0, 1] : [1, 0];
      expect(body.peaks[own][bucket]).toBeGreaterThan(0.1);
      expect(body.peaks[other][bucket]).toBeLessThan(0.01);
    }
  });

  test('a recording without peaks (from before they were kept) answers 404', async () => {
    const { callId, recording } = await recordedCall('legacy');
    await ts.server.storage.default.delete(peaksKeyFor(recording.objectKey!));
    await expectError(await asListener(`/api/calls/${callId}/recording/peaks`), 404, 'ERR_NOT_FOUND');
    await expectError(await asListener('/api/calls/no-such-call/recording/peaks'), 404, 'ERR_NOT_FOUND');
  });

  test('deleting the recording deletes its peaks and stales its playback URLs', async () => {
    const { callId, recording } = await recordedCall('deleted');
    const { url } = await playbackUrl(callId);
    const peaksKey = peaksKeyFor(recording.objectKey!);
    expect(await ts.server.storage.default.exists(peaksKey)).toBe(true);
    expect((await ts.api(`/api/calls/${callId}/recording`, { method: 'DELETE' })).status).toBe(200);
    expect(await ts.server.storage.default.exists(peaksKey)).toBe(false);
    expect(await ts.server.storage.default.exists(recording.objectKey!)).toBe(false);
    await expectError(await get(url), 403, 'ERR_TOKEN_STALE');
    await expectError(await asListener(`/api/calls/${callId}/recording/peaks`), 404, 'ERR_NOT_FOUND');
  });

  test('retention deletes the peaks with the recording', async () => {
    const { recording } = await recordedCall('expired');
    const runRetention = createRetentionProcessor({
      store: ts.server.store,
      storageFor: (r) => ts.server.storage.forRecording(r),
      webhooks: null,
      evidence: new Evidence(
        ts.server.store,
        await MasterKeyring.load({ dataDir: ts.dataDir, masterKey: ts.cluster.masterKey }),
      ),
      log: createLogger('silent'),
      // Past every recording's storage_days (90 by default).
      now: () => new Date(Date.now() + 91 * 86_400_000),
    });
    expect((await runRetention()).deleted).toBeGreaterThanOrEqual(1);
    expect((await ts.server.store.recordings.get(recording.id))!.status).toBe('deleted');
    expect(await ts.server.storage.default.exists(peaksKeyFor(recording.objectKey!))).toBe(false);
  });
});

import path from 'node:path';
import { replayFixture } from '../../src/replay/client.js';
import { readFixture } from '../../src/replay/fixture.js';
import { dropRedisPrefix, testPrefix } from '../helpers/redis.js';
import { startTestServer, uniqueCallId } from '../helpers/server.js';

const FIXTURE = path.resolve(import.meta.dirname, '../../fixtures/twilio-fork-tones.jsonl');

/**
 * BullMQ keeps a completed job for a day. A finalize job keyed by call swallowed the add of a
 * later recording of the same call id (after a database reset, or from another deployment on
 * the same Redis prefix), which then stayed `processing` for good.
 */
test('the same call id streamed again after a database reset, on the same Redis prefix, is recorded again', async () => {
  const fixture = await readFixture(FIXTURE);
  const prefix = testPrefix();
  const callId = uniqueCallId('reused');
  const ids: string[] = [];
  try {
    for (let run = 0; run < 2; run++) {
      // A fresh database each time: the second server knows nothing of the first call.
      const ts = await startTestServer({ redisPrefix: prefix });
      try {
        await ts.agent('support', { enabled: true, auto_record: true, consent_prompt: false, dual_channel: true });
        await replayFixture(fixture, {
          url: `${ts.wsUrl}/media/twilio`,
          agentId: 'support',
          token: ts.key,
          callId,
          speed: 'max',
        });
        const recording = await ts.recording(callId);
        expect(recording).toMatchObject({ status: 'ready', durationMs: fixture.meta.durationMs });
        ids.push(recording.id);
      } finally {
        await ts.close();
      }
    }
    expect(ids[1]).not.toBe(ids[0]);
  } finally {
    await dropRedisPrefix(prefix);
  }
});

import type { Job } from 'bullmq';
import { withinTime } from '../../workers/time-limit.js';

const job = { data: {} } as Job<object>;

test('a job past its time limit fails with ERR_JOB_TIME_LIMIT; one within it keeps its result', async () => {
  const hung = withinTime(20, () => new Promise<string>(() => {}));
  await expect(hung(job)).rejects.toMatchObject({
    code: 'ERR_JOB_TIME_LIMIT',
    message: expect.stringContaining('JOB_TIME_LIMIT_SECONDS'),
  });
  expect(await withinTime(60_000, async () => 'done')(job)).toBe('done');
  await expect(withinTime(60_000, async () => Promise.reject(new Error('its own failure')))(job)).rejects.toThrow(
    'its own failure',
  );
});

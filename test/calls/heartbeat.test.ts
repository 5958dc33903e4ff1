import { NodeHeartbeat } from '../../src/calls/heartbeat.js';
import { createLogger } from '../../src/log.js';
import { dropRedisPrefix, testPrefix } from '../helpers/redis.js';

test('a node is alive while it beats and not once it stops or was never there', async () => {
  const prefix = testPrefix();
  const opts = { redisUrl: 'redis://127.0.0.1:6379', prefix, log: createLogger('silent') };
  const node = new NodeHeartbeat({ ...opts, nodeId: 'node-a' });
  const observer = new NodeHeartbeat({ ...opts, nodeId: 'observer' });
  const started = Date.now();
  await node.start();
  await observer.start();
  expect(await observer.isAlive('node-a')).toBe(true);
  expect(await observer.isAlive('never-started')).toBe(false);
  const beat = (await observer.lastSeen('node-a'))!.getTime();
  await node.stop();
  expect(await observer.isAlive('node-a')).toBe(false);
  // When it was last seen outlives its heartbeat: it dates what a dead node's calls lost.
  expect((await observer.lastSeen('node-a'))!.getTime()).toBe(beat);
  expect(beat).toBeGreaterThan(started - 1);
  expect(await observer.lastSeen('never-started')).toBeNull();
  await observer.stop();
  await dropRedisPrefix(prefix);
});

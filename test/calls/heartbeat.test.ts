import { NodeHeartbeat } from '../../src/calls/heartbeat.js';
import { createLogger } from '../../src/log.js';
import { testPrefix } from '../helpers/redis.js';

test('a node is alive while it beats and not once it stops or was never there', async () => {
  const prefix = testPrefix();
  const opts = { redisUrl: 'redis://127.0.0.1:6379', prefix, log: createLogger('silent') };
  const node = new NodeHeartbeat({ ...opts, nodeId: 'node-a' });
  const observer = new NodeHeartbeat({ ...opts, nodeId: 'observer' });
  await node.start();
  await observer.start();
  expect(await observer.isAlive('node-a')).toBe(true);
  expect(await observer.isAlive('never-started')).toBe(false);
  await node.stop();
  expect(await observer.isAlive('node-a')).toBe(false);
  await observer.stop();
});

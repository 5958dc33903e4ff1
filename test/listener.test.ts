import Fastify from 'fastify';
import { Listener } from '../src/listener.js';

test('a port is bound before the app is ready: 503 until it opens, then the app answers with its own timeouts', async () => {
  const listener = await Listener.bind('127.0.0.1', 0, 'PORT');
  const url = `http://127.0.0.1:${listener.port}/hello`;
  try {
    const early = await fetch(url);
    expect([early.status, await early.text()]).toEqual([503, 'starting']);
    const app = Fastify({ serverFactory: listener.factory });
    app.get('/hello', async () => 'hi');
    await app.ready();
    listener.open();
    expect(await (await fetch(url)).text()).toBe('hi');
    // Fastify's, as on a server it makes itself: keep-alive longer than load balancers' idle timeouts.
    expect([listener.server.keepAliveTimeout, listener.server.requestTimeout]).toEqual([72_000, 0]);
    await app.close();
  } finally {
    await listener.close();
  }
  await expect(fetch(url)).rejects.toThrow();
});

test('a busy port is one error naming the variable', async () => {
  const first = await Listener.bind('127.0.0.1', 0, 'WORKER_PORT');
  try {
    await expect(Listener.bind('127.0.0.1', first.port, 'WORKER_PORT')).rejects.toMatchObject({
      code: 'ERR_PORT_IN_USE',
      message: `WORKER_PORT ${first.port} is in use on 127.0.0.1 (another callrec, or another program, listens there): stop it or set WORKER_PORT to a free port`,
    });
  } finally {
    await first.close();
  }
});

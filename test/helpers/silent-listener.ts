import net from 'node:net';
import { once } from 'node:events';

export interface SilentListener {
  port: number;
  /** TCP connections it was offered so far. */
  connections(): number;
  /** Stops listening and drops the open connections (what hung on them fails). */
  close(): Promise<void>;
}

/**
 * A TCP listener on 127.0.0.1 that counts every connection and never answers: the target of a
 * tenant's URL the node must not reach, or a bucket that accepts connections and hangs.
 */
export async function silentListener(): Promise<SilentListener> {
  const sockets = new Set<net.Socket>();
  let connections = 0;
  const server = net.createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('error', () => {}).on('close', () => sockets.delete(socket));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    connections: () => connections,
    async close() {
      const closed = new Promise((resolve) => server.close(resolve));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}

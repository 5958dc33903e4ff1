import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import WebSocket from 'ws';
import { EgressPolicy, isInternalAddress, type Resolver } from '../../src/net/egress.js';

/** A TCP listener on 127.0.0.1 that counts every connection it is offered (and answers HTTP 200). */
async function countingListener(): Promise<{ port: number; connections: () => number; close(): Promise<void> }> {
  let connections = 0;
  const server = http.createServer((_req, res) => res.end('ok'));
  server.on('connection', () => connections++);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    connections: () => connections,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

function get(policy: EgressPolicy, url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: policy.agent('webhook_url', 'http:') }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      })
      .on('error', reject);
  });
}

/** Names the test controls: what a DNS server would answer for them. */
const hosts =
  (table: Record<string, string[]>): Resolver =>
  async (hostname) => {
    const addresses = table[hostname];
    if (!addresses) throw Object.assign(new Error(`no such host ${hostname}`), { code: 'ENOTFOUND' });
    return addresses.map((address) => ({ address, family: net.isIP(address) }));
  };

describe('egress policy', () => {
  let listener: Awaited<ReturnType<typeof countingListener>>;
  beforeEach(async () => {
    listener = await countingListener();
  });
  afterEach(() => listener.close());

  it('knows the internal ranges, in every spelling', () => {
    const internal = [
      '127.0.0.1',
      '10.1.2.3',
      '172.16.0.1',
      '192.168.1.1',
      '100.64.0.1',
      '169.254.169.254',
      '0.0.0.0',
      '224.0.0.1',
      '255.255.255.255',
      '::1',
      '::',
      'fe80::1',
      'fd00:ec2::254',
      'fc00::1',
      'ff02::1',
      '::ffff:127.0.0.1',
      '::ffff:7f00:1',
      '::ffff:169.254.169.254',
      '64:ff9b::a9fe:a9fe',
      '2002:7f00:1::1',
      'not-an-ip',
    ];
    const external = ['8.8.8.8', '93.184.216.34', '2606:4700:4700::1111', '::ffff:8.8.8.8', '64:ff9b::808:808'];
    expect(internal.filter((a) => !isInternalAddress(a))).toEqual([]);
    expect(external.filter((a) => isInternalAddress(a))).toEqual([]);
  });

  it('refuses a loopback listener, without connecting to it, unless EGRESS_ALLOW names it', async () => {
    const policy = new EgressPolicy();
    await expect(
      policy.check(`http://127.0.0.1:${listener.port}/`, 'webhook_url', 'webhook_url'),
    ).rejects.toMatchObject({ code: 'ERR_EGRESS_REFUSED', field: 'webhook_url' });
    await expect(get(policy, `http://127.0.0.1:${listener.port}/`)).rejects.toMatchObject({
      code: 'ERR_EGRESS_REFUSED',
    });
    await expect(get(policy, `http://[::ffff:127.0.0.1]:${listener.port}/`)).rejects.toMatchObject({
      code: 'ERR_EGRESS_REFUSED',
    });
    expect(listener.connections()).toBe(0);
    expect((await policy.refused.get()).values.find((v) => v.labels.target === 'webhook_url')?.value).toBe(3);

    for (const allow of ['127.0.0.1', '127.0.0.0/8']) {
      const allowed = new EgressPolicy({ allow: [allow] });
      await allowed.check(`http://127.0.0.1:${listener.port}/`, 'webhook_url', 'webhook_url');
      expect(await get(allowed, `http://127.0.0.1:${listener.port}/`)).toBe(200);
    }
    expect(listener.connections()).toBe(2);
  });

  it('refuses a name that resolves to a private address, at check and at connect', async () => {
    const resolve = hosts({ 'runtime.example': ['127.0.0.1'], 'mixed.example': ['93.184.216.34', '10.0.0.5'] });
    const policy = new EgressPolicy({ resolve });
    await expect(policy.check('wss://runtime.example/', 'agent_ws_url', 'agent_ws_url')).rejects.toThrow(
      /runtime\.example resolves to the internal address 127\.0\.0\.1/,
    );
    await expect(policy.check('https://mixed.example/', 'webhook_url', 'webhook_url')).rejects.toThrow(/10\.0\.0\.5/);
    // Not known yet at configuration time: the connect refuses it.
    await policy.check('https://nowhere.example/', 'webhook_url', 'webhook_url');
    await expect(get(policy, `http://nowhere.example:${listener.port}/`)).rejects.toThrow(
      /nowhere\.example does not resolve/,
    );
    await expect(get(policy, `http://runtime.example:${listener.port}/`)).rejects.toMatchObject({
      code: 'ERR_EGRESS_REFUSED',
    });
    const ws = new WebSocket(`ws://runtime.example:${listener.port}/`, { agent: policy.agent('agent_ws_url', 'ws:') });
    const [err] = (await once(ws, 'error')) as [Error & { code?: string }];
    expect(err.code).toBe('ERR_EGRESS_REFUSED');
    expect(listener.connections()).toBe(0);
    // Allowed by name: the operator vouches for that host whatever it resolves to.
    const allowed = new EgressPolicy({ resolve, allow: ['runtime.example'] });
    expect(await get(allowed, `http://runtime.example:${listener.port}/`)).toBe(200);
  });

  it('pins the connection to what it checked: a name that rebinds to loopback after the check is refused', async () => {
    let answers = 0;
    // First answer public (what a configuration-time check sees), then loopback (DNS rebinding).
    const resolve: Resolver = async () => [{ address: answers++ === 0 ? '93.184.216.34' : '127.0.0.1', family: 4 }];
    const policy = new EgressPolicy({ resolve });
    await policy.check(`http://rebind.example:${listener.port}/`, 'webhook_url', 'webhook_url');
    await expect(get(policy, `http://rebind.example:${listener.port}/`)).rejects.toMatchObject({
      code: 'ERR_EGRESS_REFUSED',
    });
    expect(listener.connections()).toBe(0);
  });
});

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { CLI, closedPort, runCli, TSX } from '../helpers/cli.js';
import { REDIS_URL, testPrefix } from '../helpers/redis.js';

/**
 * The README's first command, `callrec serve` with nothing configured, on a machine where no Redis
 * answers on the default port. The machine's shared Redis keeps running: the default address is
 * pointed at a port where nothing listens (CALLREC_TEST_DEFAULT_REDIS_URL, for tests only).
 */
let dir: string;
beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'callrec-first-'));
});
afterEach(() => fs.rm(dir, { recursive: true, force: true }));

async function bareEnv(): Promise<Record<string, string>> {
  return {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '',
    PORT: String(await closedPort()),
    HOST: '127.0.0.1',
    CALLREC_TEST_DEFAULT_REDIS_URL: `redis://127.0.0.1:${await closedPort()}`,
  };
}

function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** `callrec serve` in `dir`, ready (`/readyz` 200). */
async function serve(env: Record<string, string>) {
  const child = spawn(process.execPath, ['--import', TSX, CLI, 'serve'], {
    cwd: dir,
    env: { ...env, LOG_FORMAT: 'json' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out = { stdout: '', stderr: '' };
  child.stdout.on('data', (chunk: Buffer) => (out.stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (out.stderr += chunk.toString()));
  const exited = once(child, 'exit').then(() => child.exitCode);
  try {
    while (
      !(await fetch(`http://127.0.0.1:${env.PORT}/readyz`).then(
        (r) => r.ok,
        () => false,
      ))
    ) {
      if (child.exitCode !== null) throw new Error(`callrec serve exited: ${out.stderr}`);
      await sleep(100);
    }
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  return {
    child,
    out,
    exited,
    lines: () =>
      out.stdout
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

test('with redis-server installed, `callrec serve` starts a private one under DATA_DIR (no TCP port, append-only file) and stops it with the node', async () => {
  const env = await bareEnv();
  const { child, out, exited, lines } = await serve(env);
  try {
    const socket = path.join(dir, 'data', 'redis', 'redis.sock');
    const redis = new Redis(socket);
    try {
      expect(await redis.config('GET', 'port')).toEqual(['port', '0']);
      expect(await redis.config('GET', 'appendonly')).toEqual(['appendonly', 'yes']);
      // The node's queues are in it.
      expect((await redis.keys('callrec:*')).length).toBeGreaterThan(0);
    } finally {
      redis.disconnect();
    }
    const started = lines().find((line) => /started a private redis-server/.test(String(line.msg)));
    expect(started).toMatchObject({ socket, redisPid: expect.any(Number) });
    // Every line says which node, process and host wrote it.
    for (const line of lines())
      expect(line).toMatchObject({ pid: child.pid, host: os.hostname(), node: expect.any(String) });
    // Said once the node is up, which /readyz may answer a moment before.
    while (!out.stderr.includes('callrec: database')) await sleep(20);
    expect(out.stderr).toContain(`callrec: database sqlite://${path.join(dir, 'data', 'callrec.db')}`);
    // Another command on this DATA_DIR finds the private Redis (and the database) the node uses.
    const retry = await runCli(['jobs', 'retry', 'no-such-call'], { cwd: dir, env });
    expect([retry.code, retry.stderr.trim().split('\n').at(-1)]).toEqual([
      1,
      'callrec: call no-such-call of tenant default has no recording',
    ]);

    child.kill('SIGINT');
    expect(await exited).toBe(130);
    expect(running(started!.redisPid as number)).toBe(false);
    await expect(fs.access(socket)).rejects.toThrow();
    await expect(fs.access(path.join(dir, 'data', 'redis', 'appendonlydir'))).resolves.toBeUndefined();
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
});

test('a private redis-server left running by a killed node is taken over, and stopped with the node', async () => {
  const redisDir = path.join(dir, 'data', 'redis');
  await fs.mkdir(redisDir, { recursive: true });
  const socket = path.join(redisDir, 'redis.sock');
  const orphan = spawn(
    'redis-server',
    ['--port', '0', '--unixsocket', socket, '--dir', redisDir, '--appendonly', 'yes'],
    { stdio: 'ignore' },
  );
  const orphanExited = once(orphan, 'exit');
  try {
    while (
      !(await fs.access(socket).then(
        () => true,
        () => false,
      ))
    )
      await sleep(50);
    const { child, exited, lines } = await serve(await bareEnv());
    expect(lines().some((line) => /using the private redis-server a previous run left/.test(String(line.msg)))).toBe(
      true,
    );
    expect(lines().some((line) => /started a private redis-server/.test(String(line.msg)))).toBe(false);
    child.kill('SIGTERM');
    expect(await exited).toBe(143);
    await orphanExited;
  } finally {
    if (orphan.exitCode === null) orphan.kill('SIGKILL');
  }
});

test('without redis-server, `callrec serve` says in one line which package to install', async () => {
  const run = await runCli(['serve'], { cwd: dir, env: { ...(await bareEnv()), PATH: path.join(dir, 'bin') } });
  expect(run.code).toBe(1);
  expect(run.stderr.trim().split('\n')).toEqual([
    expect.stringMatching(
      /^callrec: No Redis answers at redis:\/\/127\.0\.0\.1:\d+ .*apt-get install redis-server.*brew install redis/,
    ),
  ]);
});

test.each([
  ['serve', 'PORT'],
  ['worker', 'WORKER_PORT'],
])(
  '`callrec %s` on a busy port: one line naming %s, exit 1, nothing written to Redis or DATA_DIR',
  async (command, variable) => {
    const busy = net.createServer().listen(0, '127.0.0.1');
    await once(busy, 'listening');
    const { port } = busy.address() as net.AddressInfo;
    const prefix = testPrefix();
    try {
      const env = {
        PATH: process.env.PATH ?? '',
        HOST: '127.0.0.1',
        [variable]: String(port),
        REDIS_URL,
        CALLREC_QUEUE_PREFIX: prefix,
        DATA_DIR: path.join(dir, 'data'),
      };
      const run = await runCli([command], { cwd: dir, env });
      expect(run.code).toBe(1);
      expect(run.stderr.trim().split('\n')).toEqual([
        `callrec: ${variable} ${port} is in use on 127.0.0.1 (another callrec, or another program, listens there): stop it or set ${variable} to a free port`,
      ]);
      const redis = new Redis(REDIS_URL);
      try {
        expect(await redis.keys(`${prefix}:*`)).toEqual([]);
      } finally {
        redis.disconnect();
      }
      await expect(fs.access(path.join(dir, 'data'))).rejects.toThrow();
    } finally {
      busy.close();
    }
  },
);

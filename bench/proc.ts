/** Child processes of the bench and what the kernel says they cost (`/proc`, Linux only). */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** USER_HZ: the unit of utime/stime in /proc/<pid>/stat; 100 on every mainstream Linux build. */
const CLOCK_TICKS_PER_SECOND = 100;

/** CPU seconds (user + system) the process has used so far. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Field 2 (comm) may hold spaces and parentheses: count fields after its closing ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND; // utime, stime (fields 14, 15)
}

/** Resident set size in bytes. */
export function rssBytes(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) * 1024 : 0;
}

/** A TCP port free on 127.0.0.1 right now (the OS picks it; we release it for the child). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const children = new Set<ChildProcess>();
let exitHookInstalled = false;

/** Kills every child still running: on the way out, whatever the way out is. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  const killAll = () => {
    for (const child of children) child.kill('SIGKILL');
  };
  process.on('exit', killAll);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      killAll();
      process.exit(130);
    });
  }
}

export interface Child {
  process: ChildProcess;
  pid: number;
  /** What the child wrote to stderr (kept for the error message if it dies). */
  stderr(): string;
  /** SIGTERM, then SIGKILL if it has not exited within `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

export interface ChildOptions {
  /** Node's own arguments (`--import tsx`). */
  execArgv?: string[];
  /** Each chunk the child writes to stdout (callrec's log lines); ignored without it. */
  onStdout?: (chunk: string) => void;
}

/** Starts a Node script as a child with an IPC channel (structured clone, so typed arrays pass). */
/** `env` is laid over this process's; a variable set to undefined is left out. */
export function startChild(
  script: string,
  args: string[],
  env: Record<string, string | undefined>,
  opts: ChildOptions = {},
): Child {
  installExitHook();
  const stdout = opts.onStdout ? 'pipe' : 'ignore';
  const child = fork(script, args, {
    env: { ...process.env, ...env },
    execArgv: opts.execArgv,
    stdio: ['ignore', stdout, 'pipe', 'ipc'],
    serialization: 'advanced',
  });
  if (opts.onStdout) child.stdout!.setEncoding('utf8').on('data', opts.onStdout);
  children.add(child);
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-4000);
  });
  const exited = once(child, 'exit').then(() => children.delete(child));
  return {
    process: child,
    pid: child.pid!,
    stderr: () => stderr,
    async stop(graceMs = 10_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** The first IPC message of a child that announces itself (e.g. `{ port }`). */
export async function firstMessage<T>(child: Child, timeoutMs = 10_000): Promise<T> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), timeoutMs);
  try {
    const [message] = await Promise.race([
      once(child.process, 'message', { signal: ac.signal }),
      once(child.process, 'exit', { signal: ac.signal }).then(() => {
        throw new Error(`child exited before it was ready: ${child.stderr()}`);
      }),
    ]);
    return message as T;
  } finally {
    clearTimeout(timer);
    ac.abort();
  }
}

/** Polls `url` until it answers 200, or throws with the child's stderr. */
export async function waitForHttp(url: string, child: Child, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.process.exitCode !== null) throw new Error(`child exited: ${child.stderr()}`);
    const ok = await fetch(url).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`${url} did not answer in ${timeoutMs} ms: ${child.stderr()}`);
}

import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CallrecError } from './errors.js';

/**
 * A media node is its `DATA_DIR`: the id is kept there (`node-id`), so a process restarted on
 * the same disk is the same node, finds its own calls and spools, and recovers them at once
 * instead of waiting for its old heartbeat to expire. `node.pid` keeps two live processes off
 * one `DATA_DIR`; a pid file left by a dead process (or by this very pid, as after a container
 * restart where every process is pid 1) is taken over.
 */
export interface NodeIdentity {
  nodeId: string;
  /** Gives the `DATA_DIR` up (removes the pid file), at a clean stop. */
  release(): Promise<void>;
}

function isRunning(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, under another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function readOrCreate(file: string, create: () => string): Promise<string> {
  try {
    await fs.writeFile(file, create(), { flag: 'wx', mode: 0o600 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  return (await fs.readFile(file, 'utf8')).trim();
}

/** Node ids name Redis keys and BullMQ queues: letters, digits, `.`, `_`, `-` only. */
const NODE_ID = /^[\w.-]{1,100}$/;

export async function claimNodeIdentity(dataDir: string): Promise<NodeIdentity> {
  await fs.mkdir(dataDir, { recursive: true });
  const host =
    os
      .hostname()
      .replace(/[^\w.-]/g, '-')
      .slice(0, 60) || 'node';
  const nodeId = await readOrCreate(path.join(dataDir, 'node-id'), () => `${host}-${randomBytes(4).toString('hex')}\n`);
  if (!NODE_ID.test(nodeId))
    throw new CallrecError(
      'ERR_CONFIG',
      `${path.join(dataDir, 'node-id')} holds "${nodeId.slice(0, 100)}", not a node id`,
    );
  const pidFile = path.join(dataDir, 'node.pid');
  const holder = Number((await fs.readFile(pidFile, 'utf8').catch(() => '')).trim());
  if (isRunning(holder)) {
    throw new CallrecError(
      'ERR_CONFIG',
      `DATA_DIR ${dataDir} is in use by callrec process ${holder}: every node needs a DATA_DIR of its own`,
    );
  }
  await fs.writeFile(pidFile, `${process.pid}\n`, { mode: 0o600 });
  return {
    nodeId,
    async release() {
      const current = Number((await fs.readFile(pidFile, 'utf8').catch(() => '')).trim());
      if (current === process.pid) await fs.rm(pidFile, { force: true });
    },
  };
}

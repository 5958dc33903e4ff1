import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { CallrecError } from '../errors.js';
import type { ObjectStore } from './types.js';

/** Objects as files under one directory; the default store for a single node. */
export class LocalObjectStore implements ObjectStore {
  readonly url: string;
  readonly #dir: string;

  constructor(dir: string) {
    this.#dir = path.resolve(dir);
    this.url = pathToFileURL(this.#dir).href;
  }

  #path(key: string): string {
    const full = path.resolve(this.#dir, key);
    if (!full.startsWith(this.#dir + path.sep))
      throw new CallrecError('ERR_BAD_KEY', `object key escapes the store: ${key}`);
    return full;
  }

  async put(key: string, body: Readable): Promise<{ size: number }> {
    const target = this.#path(key);
    await fs.mkdir(path.dirname(target), { recursive: true });
    // Write beside the target and rename: a reader (or a crash) never sees half an object,
    // and a retried upload simply replaces the first.
    const temp = `${target}.${randomUUID()}.part`;
    try {
      await pipeline(body, createWriteStream(temp, { mode: 0o600 }));
      const { size } = await fs.stat(temp);
      await fs.rename(temp, target);
      return { size };
    } catch (err) {
      await fs.rm(temp, { force: true });
      throw err;
    }
  }

  async get(key: string, range?: { start: number; end: number }): Promise<Readable> {
    const file = this.#path(key);
    const handle = await fs.open(file, 'r').catch((err: NodeJS.ErrnoException) => {
      throw err.code === 'ENOENT' ? new CallrecError('ERR_NOT_FOUND', `no object ${key}`) : err;
    });
    return handle.createReadStream({ start: range?.start, end: range?.end });
  }

  async size(key: string): Promise<number | null> {
    try {
      return (await fs.stat(this.#path(key))).size;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  }

  async exists(key: string): Promise<boolean> {
    return (await this.size(key)) !== null;
  }

  async delete(key: string): Promise<void> {
    await fs.rm(this.#path(key), { force: true });
  }
}

import fs from 'node:fs/promises';

/** Writes `file` until the disk it is on has no byte left (a short write takes the last ones, then ENOSPC); any other error is thrown. */
export async function fillDisk(file: string): Promise<void> {
  const handle = await fs.open(file, 'w');
  try {
    for (;;) await handle.write(Buffer.alloc(64 * 1024, 1));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    await handle.close();
  }
}

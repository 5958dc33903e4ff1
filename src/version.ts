import { readFileSync } from 'node:fs';
import path from 'node:path';

/** The package's root (where package.json is), from source and from the build (`dist/…`) alike. */
function packageRoot(): string {
  let dir = import.meta.dirname;
  for (;;) {
    try {
      return JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')).version as string;
    } catch {
      const parent = path.dirname(dir);
      if (parent === dir) return '0.0.0';
      dir = parent;
    }
  }
}

/** callrec's version, as package.json states it. */
export const CALLREC_VERSION: string = packageRoot();

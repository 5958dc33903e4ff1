// Runs `npm run build` when the build is missing or older than a source, so `npm start` starts at
// once on an unchanged tree. Plain JavaScript: it runs before anything is compiled.
// Every build rewrites dist/src/cli.js (tsc, emitting nothing on an error) and dist/web/index.html
// (vite), so the older of the two is when the last whole build finished.
import { execSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';

const root = path.join(path.dirname(new URL(import.meta.url).pathname), '..');
const OUTPUTS = ['dist/src/cli.js', 'dist/web/index.html'];
const SOURCES = [
  'src',
  'media',
  'workers',
  'bench',
  'web',
  'package.json',
  'package-lock.json',
  'tsconfig.json',
  'tsconfig.build.json',
];

/** Newest modification time under `p` (a file or a directory tree); 0 when it does not exist. */
function newest(p) {
  let stat;
  try {
    stat = statSync(p);
  } catch {
    return 0;
  }
  if (!stat.isDirectory()) return stat.mtimeMs;
  return readdirSync(p).reduce((max, name) => Math.max(max, newest(path.join(p, name))), stat.mtimeMs);
}

const built = Math.min(...OUTPUTS.map((p) => newest(path.join(root, p)) || -Infinity));
const changed = Math.max(...SOURCES.map((p) => newest(path.join(root, p))));
if (built < changed) execSync('npm run build --silent', { cwd: root, stdio: 'inherit' });

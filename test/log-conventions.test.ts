import fs from 'node:fs';
import path from 'node:path';

const ROOT = path.join(import.meta.dirname, '..');

function sources(dir: string): string[] {
  return fs
    .readdirSync(path.join(ROOT, dir), { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith('.ts'))
    .map((entry) => path.join(entry.parentPath, entry.name));
}

/**
 * Errors are logged as `{ err }`, so pino's serializer keeps their type, code and stack; `err:
 * err.message` keeps only the message. Read from the source, as a linter would.
 */
test('no log call passes an error as its message alone', () => {
  const lines = ['src', 'workers', 'media', 'bench'].flatMap(sources).flatMap((file) =>
    fs
      .readFileSync(file, 'utf8')
      .split('\n')
      .map((line, i) => ({ where: `${path.relative(ROOT, file)}:${i + 1}`, line })),
  );
  expect(lines.length).toBeGreaterThan(1000);
  const offending = lines
    .filter(({ line }) => /\berr: \(?\w+(?: as \w+\))?\.message\b/.test(line))
    .map(({ where, line }) => `${where}: ${line.trim()}`);
  expect(offending).toEqual([]);
});

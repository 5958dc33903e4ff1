import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { ROOT, readText, variablesReadBySource } from '../deploy/files.js';

/**
 * The documentation ships with the product, so it may link only to what ships (no `../shared`), every
 * link must land on a file and heading that exist, and the configuration reference must name exactly
 * the variables callrec reads.
 */

/** Variables the docs name that another program reads: glibc, the AWS SDK's credential chain, Node. */
const READ_BY_OTHERS = new Set([
  'MALLOC_ARENA_MAX',
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
  'AWS_PROFILE',
  'NODE_OPTIONS',
]);
/** The system's, which callrec reads without configuring anything by it (where to find `redis-server`). */
const SYSTEM = new Set(['PATH', 'HOME']);

const docs = [
  'README.md',
  'SECURITY.md',
  ...readdirSync(path.join(ROOT, 'docs'), { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.md'))
    .map((file) => path.join('docs', file)),
];

/** GitHub's heading anchors: lower case, punctuation but `-` and `_` dropped, spaces as `-`. */
function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const [, heading] of markdown.replace(/```[\s\S]*?```/g, '').matchAll(/^#{1,6} +(.+?) *#*$/gm)) {
    const base = heading
      .replace(/`/g, '')
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .trim()
      .replace(/ /g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

/** `[text](target)` links outside code, minus absolute URLs. */
function links(markdown: string): string[] {
  const prose = markdown.replace(/```[\s\S]*?```/g, '').replace(/`[^`\n]*`/g, '');
  return [...prose.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)]
    .map((m) => m[1])
    .filter((target) => !/^[a-z][a-z0-9+.-]*:/i.test(target));
}

describe('documentation', () => {
  test.each(docs)('%s: every link lands on a shipped file and an existing heading', (file) => {
    const broken: string[] = [];
    for (const target of links(readText(file))) {
      const [rel, anchor] = target.split('#');
      const resolved = rel === '' ? file : path.normalize(path.join(path.dirname(file), rel));
      if (resolved.startsWith('..') || !existsSync(path.join(ROOT, resolved))) {
        broken.push(`${target}: no such file in the repository`);
        continue;
      }
      if (anchor && resolved.endsWith('.md') && !anchors(readText(resolved)).has(anchor))
        broken.push(`${target}: no such heading`);
    }
    expect(broken).toEqual([]);
  });

  test.each(docs)('%s speaks of the product, not of how it is developed', (file) => {
    const text = readText(file);
    expect(text).not.toMatch(/\bissues? #?\d+\b/i);
    expect(text).not.toMatch(/shared\/SPEC\.md/);
    expect(text).not.toMatch(/\b(this project's|our|the development) (2-core )?(development )?machine\b/i);
  });

  test('docs/configuration.md names every variable callrec reads, and only those', () => {
    const reference = readText('docs/configuration.md');
    const documented = new Set<string>();
    for (const row of reference.split('\n').filter((line) => line.startsWith('| `'))) {
      const firstCell = row.split('|')[1];
      for (const [, name] of firstCell.matchAll(/`([A-Z][A-Z0-9_]+)`/g)) documented.add(name);
    }
    const read = variablesReadBySource();
    expect([...read].filter((name) => !documented.has(name) && !SYSTEM.has(name)).sort()).toEqual([]);
    expect([...documented].filter((name) => !read.has(name) && !READ_BY_OTHERS.has(name)).sort()).toEqual([]);
  });
});

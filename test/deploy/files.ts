import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse, parseAllDocuments } from 'yaml';

/** The repository's root. */
export const ROOT = path.resolve(import.meta.dirname, '../..');

export function readText(file: string): string {
  return readFileSync(path.join(ROOT, file), 'utf8');
}

/** One YAML document; `<<` merge keys resolved, as Compose resolves them. */
export function readYaml(file: string): any {
  return parse(readText(file), { merge: true });
}

/** Every document of a multi-document YAML file; throws on the first syntax error. */
export function readYamlDocuments(file: string): any[] {
  return parseAllDocuments(readText(file)).map((doc) => {
    if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors[0].message}`);
    return doc.toJS();
  });
}

/** A document's `## title` section, up to the next `## `, its line breaks as spaces (prose is wrapped anywhere). */
export function docSection(file: string, title: string): string {
  const text = readText(file);
  const start = text.indexOf(`\n## ${title}\n`);
  if (start < 0) throw new Error(`${file} has no "## ${title}" section`);
  const end = text.indexOf('\n## ', start + 1);
  return text.slice(start, end < 0 ? undefined : end).replace(/\s+/g, ' ');
}

/** Every document that ships: the README, SECURITY.md and docs/, as one text. */
export function allDocs(): string {
  const docs = readdirSync(path.join(ROOT, 'docs'), { recursive: true, encoding: 'utf8' }).filter((file) =>
    file.endsWith('.md'),
  );
  return ['README.md', 'SECURITY.md', ...docs.map((file) => path.join('docs', file))].map(readText).join('\n');
}

/** Seconds a drain may take before the platform kills the process, beyond DRAIN_TIMEOUT_SECONDS: finalizing the drained calls' spools. */
export const FINALIZE_MARGIN_SECONDS = 60;

/** Every `*.ts` file under `dir`, relative to the root. */
function sources(dir: string): string[] {
  return readdirSync(path.join(ROOT, dir), { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.ts'))
    .map((file) => path.join(dir, file));
}

/** Environment variables src/ reads: `env.NAME`, `process.env.NAME`, or `(env, 'NAME'` in src/config.ts's readers. */
export function variablesReadBySource(): Set<string> {
  const names = new Set<string>();
  for (const file of sources('src')) {
    for (const match of readText(file).matchAll(/\benv(?:\.|,\s*')([A-Z][A-Z0-9_]+)/g)) names.add(match[1]);
  }
  return names;
}

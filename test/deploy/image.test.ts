import { docSection, readText } from './files.js';

const dockerfile = readText('Dockerfile');
const pkg = JSON.parse(readText('package.json'));
const minimum = /^>=(\d+)\.(\d+)$/.exec(pkg.engines.node);

/** Base images of every stage, with `ARG` defaults substituted. */
function baseImages(): string[] {
  const args = Object.fromEntries([...dockerfile.matchAll(/^ARG (\w+)=(\S+)$/gm)].map((m) => [m[1], m[2]]));
  return [...dockerfile.matchAll(/^FROM (\S+)/gm)].map((m) =>
    m[1].replace(/\$\{(\w+)\}/g, (_all, name: string) => args[name]),
  );
}

describe('Dockerfile', () => {
  test('is multi-stage on one Node image whose major satisfies engines and the native addons', () => {
    const images = baseImages();
    expect(images.length).toBeGreaterThanOrEqual(2);
    expect(new Set(images).size).toBe(1);
    const major = Number(/^node:(\d+)-/.exec(images[0])?.[1]);
    expect(minimum).not.toBeNull();
    expect(major).toBeGreaterThanOrEqual(Number(minimum![1]));
    // better-sqlite3 (N-API) names the oldest Node it supports.
    const sqlite = JSON.parse(readText('node_modules/better-sqlite3/package.json'));
    expect(major).toBeGreaterThanOrEqual(Number(/^>=(\d+)$/.exec(sqlite.engines.node)?.[1]));
    expect(docSection('docs/operations.md', 'Running a node')).toContain(`on Node.js ${major} (the Active LTS line`);
  });

  test("the README's Node claim is package.json's engines", () => {
    expect(readText('README.md')).toContain(`Node.js ≥ ${minimum![1]}.${minimum![2]}`);
  });

  test('builds the server and the dashboard, and runs unprivileged', () => {
    expect(dockerfile).toMatch(/^RUN npm run build\b/m);
    expect(pkg.scripts.build).toContain('build:web');
    expect(dockerfile).toMatch(/^COPY --from=build \/app\/dist \.\/dist$/m);
    const user = /^USER (\S+)/m.exec(dockerfile)?.[1];
    expect(user).toBeDefined();
    expect(user).not.toMatch(/^(root|0)(:|$)/);
  });

  test('checks /healthz and stops with SIGTERM', () => {
    expect(dockerfile).toMatch(/^HEALTHCHECK .*\\\n.*\/healthz/m);
    expect(dockerfile).toMatch(/^STOPSIGNAL SIGTERM$/m);
    expect(dockerfile).toMatch(/^ENTRYPOINT \["node", "dist\/src\/cli\.js"\]$/m);
  });

  test('.dockerignore keeps what the build compiles, and leaves tests and fixtures out', () => {
    const ignored = readText('.dockerignore')
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line && !line.startsWith('#'));
    const build = JSON.parse(readText('tsconfig.build.json').replace(/^\s*\/\/.*$/gm, ''));
    for (const needed of [
      ...build.include,
      'web',
      'package.json',
      'package-lock.json',
      'tsconfig.json',
      'tsconfig.build.json',
    ]) {
      expect([needed, ignored.includes(needed)]).toEqual([needed, false]);
    }
    expect(build.include).not.toEqual(expect.arrayContaining(['test']));
    expect(ignored).toEqual(expect.arrayContaining(['node_modules', 'dist', '.env', 'deploy', 'test', 'fixtures']));
  });
});

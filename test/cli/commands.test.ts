import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { runCli } from '../helpers/cli.js';

const FIXTURE = path.resolve(import.meta.dirname, '../../fixtures/twilio-fork-tones.jsonl');
const VERSION = (
  JSON.parse(readFileSync(path.join(import.meta.dirname, '../../package.json'), 'utf8')) as { version: string }
).version;

const POSTGRES_URL = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
/** Each command is a process of its own, started through tsx: seconds each on a busy machine. */
const CLI_TIMEOUT = 120_000;

let dir: string;
beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'callrec-cli-'));
});
afterEach(() => fs.rm(dir, { recursive: true, force: true }));

test(
  '--version prints the package version and exits 0; a usage error exits 2, a failure 1',
  async () => {
    expect(await runCli(['--version'])).toMatchObject({ code: 0, stdout: `${VERSION}\n` });
    const unknown = await runCli(['keys', 'list', '--colour']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown option '--colour'/);
    expect((await runCli(['frobnicate'])).code).toBe(2);
    expect((await runCli(['replay', FIXTURE])).code).toBe(2); // --url is required
    expect((await runCli(['replay', FIXTURE, '--url', 'ftp://h'])).code).toBe(2);
    // A failure that is not the command line's: no database here.
    const failed = await runCli(['keys', 'list'], { cwd: dir });
    expect(failed.code).toBe(1);
  },
  CLI_TIMEOUT,
);

test(
  "every command's --help lists its options, the environment variables it reads and an example",
  async () => {
    const commands = [
      ['serve'],
      ['worker'],
      ['migrate'],
      ['replay'],
      ['bench'],
      ['fuzz'],
      ['soak'],
      ['jobs', 'retry'],
      ['keys', 'create'],
      ['keys', 'list'],
      ['keys', 'revoke'],
      ['keys', 'rotate-master'],
    ];
    const serve = await runCli(['serve', '--help']);
    expect(serve.code).toBe(0);
    for (const variable of ['PORT', 'DATA_DIR', 'REDIS_URL', 'DATABASE_URL', 'LOG_FORMAT', 'FLITE_VOICE'])
      expect(serve.stdout).toContain(variable);
    // One after another: each is a process of its own, and the machine may be busy.
    const helps = [];
    for (const command of commands) helps.push(await runCli([...command, '--help']));
    for (const [i, help] of helps.entries()) {
      const name = commands[i].join(' ');
      expect([name, help.code]).toEqual([name, 0]);
      expect([name, /^Options:\n/m.test(help.stdout), /^Example:\n {2}\$ /m.test(help.stdout)]).toEqual([
        name,
        true,
        true,
      ]);
    }
    // Those that open the database say which variables choose it.
    for (const [i, help] of helps.entries()) {
      if (['bench', 'fuzz', 'soak', 'replay'].includes(commands[i][0])) continue;
      expect([commands[i].join(' '), help.stdout.includes('DATABASE_URL')]).toEqual([commands[i].join(' '), true]);
    }
    expect(helps[3].stdout).toContain('CALLREC_TOKEN');
  },
  3 * CLI_TIMEOUT,
);

test(
  "a command run away from the server's DATA_DIR says which database it looked for and creates none",
  async () => {
    const run = await runCli(['keys', 'list'], { cwd: dir });
    expect(run.code).toBe(1);
    const db = path.join(dir, 'data', 'callrec.db');
    expect(run.stderr).toContain(`callrec: database sqlite://${db}`);
    expect(run.stderr).toContain(`callrec: no database at ${db}`);
    expect(run.stderr).toContain('DATA_DIR');
    expect(run.stderr).not.toMatch(/\n\s+at /); // no stack
    await expect(fs.access(db)).rejects.toThrow();
    // `keys create` too, unless told to.
    expect((await runCli(['keys', 'create', '--name', 'ci'], { cwd: dir })).code).toBe(1);
    await expect(fs.access(db)).rejects.toThrow();
    const created = await runCli(['keys', 'create', '--name', 'ci', '--secret-only', '--create-database'], {
      cwd: dir,
    });
    expect(created.code).toBe(0);
    expect(created.stdout).toMatch(/^crk_\S+\n$/);
  },
  CLI_TIMEOUT,
);

test(
  'on PostgreSQL, a database (or schema) callrec never ran on is refused the same way, until `migrate`',
  async () => {
    const schema = `cli_${process.pid}_${Date.now().toString(36)}`;
    const env = { DATABASE_URL: `${POSTGRES_URL}?schema=${schema}` };
    try {
      const refused = await runCli(['keys', 'list'], { env });
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain(`callrec: database ${POSTGRES_URL}?schema=${schema}`);
      expect(refused.stderr).toContain('callrec: the database holds no callrec tables');
      expect((await runCli(['migrate'], { env })).code).toBe(0);
      expect(await runCli(['keys', 'list', '--json'], { env })).toMatchObject({ code: 0, stdout: '[]\n' });
    } finally {
      const client = new pg.Client({ connectionString: POSTGRES_URL });
      await client.connect();
      await client.query(`drop schema if exists "${schema}" cascade`).finally(() => client.end());
    }
  },
  CLI_TIMEOUT,
);

test(
  'keys: `migrate` creates the database; --secret-only prints the secret alone, --json the key; `keys list` labels its columns or prints JSON',
  async () => {
    const env = { DATA_DIR: path.join(dir, 'server-data') };
    const migrate = await runCli(['migrate'], { env });
    expect(migrate).toMatchObject({ code: 0, stdout: 'database is up to date\n' });
    expect(migrate.stderr).toContain(`callrec: database sqlite://${path.join(dir, 'server-data', 'callrec.db')}`);

    const secretOnly = await runCli(
      ['keys', 'create', '--name', 'replay', '--scopes', 'media:stream', '--secret-only'],
      { env },
    );
    expect(secretOnly.code).toBe(0);
    const secret = secretOnly.stdout.trim();
    expect(secretOnly.stdout).toBe(`${secret}\n`);
    expect(secret).toMatch(/^crk_/);

    const json = await runCli(['keys', 'create', '--name', 'admin', '--json'], { env });
    const created = JSON.parse(json.stdout) as {
      id: string;
      tenant_id: string;
      name: string;
      scopes: string[];
      secret: string;
    };
    expect(created).toMatchObject({
      tenant_id: 'default',
      name: 'admin',
      scopes: ['admin'],
      secret: expect.stringMatching(/^crk_/),
    });
    expect((await runCli(['keys', 'create', '--name', 'x', '--json', '--secret-only'], { env })).code).toBe(2);

    const listed = JSON.parse((await runCli(['keys', 'list', '--json'], { env })).stdout) as Array<
      Record<string, unknown>
    >;
    expect(listed.map((k) => k.name).sort()).toEqual(['admin', 'replay']);
    expect(listed.find((k) => k.id === created.id)).toEqual({
      id: created.id,
      tenant_id: 'default',
      prefix: expect.any(String),
      name: 'admin',
      scopes: ['admin'],
      revoked_at: null,
    });
    // No secret in a listing.
    expect(JSON.stringify(listed)).not.toContain(created.secret);

    const table = (await runCli(['keys', 'list'], { env })).stdout.split('\n');
    expect(table[0]).toMatch(/^ID\s+TENANT\s+PREFIX\s+NAME\s+SCOPES\s+STATUS$/);
    expect(table.find((line) => line.startsWith(created.id))).toMatch(/\s+default\s+\S+…\s+admin\s+admin\s+active$/);
  },
  CLI_TIMEOUT,
);

describe('replay takes its key from CALLREC_TOKEN or stdin, and the server address as people type it', () => {
  let ts: TestServer;
  beforeAll(async () => {
    ts = await startTestServer();
    await ts.agent('support', { enabled: true, auto_record: true, consent_prompt: false });
  });
  afterAll(() => ts.close());

  const args = () => [
    'replay',
    FIXTURE,
    '--url',
    ts.server.url.replace('http://', ''),
    '--agent',
    'support',
    '--speed',
    'max',
  ];

  test(
    'CALLREC_TOKEN',
    async () => {
      const run = await runCli(args(), { env: { CALLREC_TOKEN: ts.key } });
      expect([run.code, run.stderr]).toEqual([0, expect.any(String)]);
      expect(run.stdout).toMatch(/^ok .* recording=ready /m);
      // Without a key the stream is refused: the variable was what let it in.
      expect((await runCli([...args(), '--no-check-recording'])).code).toBe(1);
    },
    CLI_TIMEOUT,
  );

  test(
    '--token-stdin',
    async () => {
      const run = await runCli([...args(), '--token-stdin'], { stdin: `${ts.key}\n` });
      expect(run.code).toBe(0);
      expect(run.stdout).toMatch(/^ok .* recording=ready /m);
      expect((await runCli([...args(), '--token-stdin'], { stdin: '' })).code).toBe(2);
    },
    CLI_TIMEOUT,
  );
});

import fs from 'node:fs/promises';
import type { Command } from 'commander';
import type { Config } from '../config.js';
import { MasterKeyring } from '../crypto/keys.js';
import { CallrecError } from '../errors.js';
import type { Store } from '../store/index.js';
import { auditLedgers } from './audit.js';
import { Evidence } from './index.js';
import type { KeySet } from './keys.js';
import { readEvidenceZip } from './package.js';
import { verifyRecording, type VerificationReport } from './verify.js';

/** What the evidence commands need from the CLI. */
export interface CommandContext {
  config(): Config;
  withStore<T>(fn: (store: Store) => Promise<T>): Promise<T>;
  /** `--help`'s tail: the variables a command reads and an example. */
  helpTail(variables: string[], example: string): string;
}

const DATABASE_ENV = ['DATABASE_URL', 'DATA_DIR'];

/** `--keys`: a key set file, or the URL of one (a server's `/.well-known/callrec-keys.json`). */
async function loadKeySet(where: string): Promise<KeySet> {
  if (/^https?:\/\//.test(where)) {
    const response = await fetch(where, { signal: AbortSignal.timeout(10_000), redirect: 'error' });
    if (!response.ok) throw new CallrecError('ERR_BAD_ARGUMENT', `--keys ${where}: HTTP ${response.status}`);
    return (await response.json()) as KeySet;
  }
  return JSON.parse(await fs.readFile(where, 'utf8')) as KeySet;
}

/** The report as a person reads it. */
function printReport(report: VerificationReport): void {
  const m = report.manifest;
  if (m) {
    console.log(
      `recording ${m.recording_id} of call ${m.call_id} (tenant ${m.tenant_id}, agent ${m.agent_id}, ${m.provider} ${m.mode})`,
    );
    console.log(
      `  ${m.started_at} → ${m.ended_at ?? '?'}, ${(m.duration_ms / 1000).toFixed(1)} s, ${m.channels === 2 ? 'stereo: left caller, right agent' : 'mono mix'}, ${m.sample_rate} Hz ${m.audio.format}`,
    );
    const consent = m.consent as Record<string, unknown> | null;
    console.log(
      `  consent: ${consent ? `${String(consent.outcome)} (${String(consent.mode)})${consent.message ? `, "${String(consent.message)}"` : ''}` : 'no record'}`,
    );
    console.log(
      `  ${m.complete ? 'complete' : `incomplete: ${m.lost_spans.map((s) => `${s.start_ms}–${s.end_ms} ms ${s.reason}`).join('; ')}`}; signed ${m.signed_at}${m.signed_later ? ' (later, for a recording finalized before signing)' : ''}`,
    );
  }
  for (const access of report.accesses)
    console.log(
      `  accessed ${String(access.at)} by key ${String(access.key_id)} from ${String(access.ip)} (${String(access.purpose)}${access.range ? `, ${String(access.range)}` : ''})`,
    );
  for (const c of report.checks) console.log(`${c.ok ? 'ok  ' : 'FAIL'} ${c.check}: ${c.detail}`);
  console.log(report.ok ? 'VERIFIED' : 'NOT VERIFIED');
}

/** `callrec verify`, `callrec audit verify`, `callrec signing-keys rotate`. */
export function registerEvidenceCommands(program: Command, ctx: CommandContext): void {
  program
    .command('verify <file> [manifest]')
    .description(
      'verify a recording offline: <audio> <manifest.jws>, or an evidence package <evidence.zip>; exits 0 only when everything holds',
    )
    .option(
      '--keys <file|url>',
      'the key set (JWKS): a file or the URL of /.well-known/callrec-keys.json (an evidence package carries its own)',
    )
    .option('--ledger <file>', "a ledger extract (ledger.jsonl) to check the manifest's place against")
    .option('--timestamp <file>', "the manifest's RFC 3161 time-stamp token (manifest.tsr)")
    .addHelpText(
      'after',
      ctx.helpTail(
        [],
        'callrec verify evidence.zip    (or: callrec verify call.mp3 manifest.jws --keys https://callrec.example.com/.well-known/callrec-keys.json)',
      ),
    )
    .action(
      async (
        file: string,
        manifestFile: string | undefined,
        opts: { keys?: string; ledger?: string; timestamp?: string },
      ) => {
        let report: VerificationReport;
        if (manifestFile === undefined) {
          const pkg = readEvidenceZip(await fs.readFile(file));
          const keySet = opts.keys ? await loadKeySet(opts.keys) : pkg.keys;
          report = await verifyRecording({
            audio: pkg.audio,
            manifest: pkg.manifest,
            keySet,
            ledger: pkg.ledger,
            timestamp: pkg.timestamp,
            prompt: pkg.prompt?.audio,
          });
        } else {
          if (!opts.keys)
            throw new CallrecError('ERR_BAD_ARGUMENT', '--keys is required with an audio file and a manifest');
          const ledger = opts.ledger
            ? (await fs.readFile(opts.ledger, 'utf8'))
                .split('\n')
                .filter(Boolean)
                .map((line) => JSON.parse(line))
            : undefined;
          const timestamp = opts.timestamp ? await fs.readFile(opts.timestamp) : undefined;
          report = await verifyRecording({
            audio: await fs.readFile(file),
            manifest: (await fs.readFile(manifestFile, 'utf8')).trim(),
            keySet: await loadKeySet(opts.keys),
            ledger,
            timestamp,
          });
        }
        printReport(report);
        if (!report.ok) process.exitCode = 1;
      },
    );

  program
    .command('audit')
    .description("the tenants' ledgers")
    .command('verify')
    .description("walk every ledger (or one tenant's) and report the first break; exits 0 only when all hold")
    .option('--tenant <id>', 'only this tenant')
    .addHelpText('after', ctx.helpTail(DATABASE_ENV, 'callrec audit verify --tenant acme'))
    .action((opts: { tenant?: string }) =>
      ctx.withStore(async (store) => {
        const started = Date.now();
        const audits = await auditLedgers(store, { tenantId: opts.tenant });
        for (const audit of audits)
          console.log(
            `${audit.error ? 'BROKEN' : 'ok    '} ${audit.tenantId}: ${audit.entries} entries${audit.error ? `; first break: ${audit.error}` : ''}`,
          );
        console.log(`${audits.length} ledger(s) checked in ${((Date.now() - started) / 1000).toFixed(1)} s`);
        if (audits.some((a) => a.error)) process.exitCode = 1;
      }),
    );

  program
    .command('signing-keys')
    .description('manifest signing keys')
    .command('rotate')
    .description(
      'make a new signing key current; retired public keys stay published, so what they signed still verifies',
    )
    .addHelpText('after', ctx.helpTail([...DATABASE_ENV, 'CALLREC_MASTER_KEY'], 'callrec signing-keys rotate'))
    .action(async () => {
      const cfg = ctx.config();
      const ring = await MasterKeyring.load({ dataDir: cfg.dataDir, masterKey: cfg.masterKey });
      await ctx.withStore(async (store) => {
        const kid = await new Evidence(store, ring).keys.rotate();
        console.log(`signing key ${kid} is current; earlier keys stay published at /.well-known/callrec-keys.json`);
      });
    });
}

import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { isDeepStrictEqual, promisify } from 'node:util';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import openapiTS from 'openapi-typescript';
import type { OpenAPIV3_1 } from 'openapi-types';
import { Evidence } from '../../src/evidence/index.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { startApi, type ApiHarness } from './harness.js';

const run = promisify(execFile);
const ROOT = path.join(import.meta.dirname, '../..');
const OPERATOR = 'operator-secret-for-client-tests';

/**
 * A small client written the way an API user would: over plain `fetch`, typed only by what
 * openapi-typescript generates from the live document. The `@ts-expect-error` lines make the
 * check two-sided: were the generated types loose (`any`, `unknown`), those lines would compile
 * and tsc would fail on the unused directives.
 */
const CLIENT = `
import type { operations } from './api.js';

type Responses<Id extends keyof operations> = operations[Id]['responses'];
type Json<R> = R extends { content: { 'application/json': infer T } } ? T : never;
/** The JSON an operation answers with \`status\`. */
type Body<Id extends keyof operations, S extends keyof Responses<Id>> = Json<Responses<Id>[S]>;
type RequestJson<Id extends keyof operations> = operations[Id] extends { requestBody?: { content: { 'application/json': infer T } } } ? T : never;
export type ApiError = Body<'getCall', '4XX'>['error'];

export class CallrecClient {
  constructor(private readonly base: string, private readonly key: string) {}

  async #send<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await fetch(this.base + path, {
      method,
      headers: { authorization: 'Bearer ' + this.key, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!res.ok) {
      const { error } = (await res.json()) as { error: ApiError };
      throw new Error(error.code + ': ' + error.message + (error.field ? ' (' + error.field + ')' : ''));
    }
    return (await res.json()) as T;
  }

  listCalls(query: NonNullable<operations['listCalls']['parameters']['query']> = {}) {
    const search = new URLSearchParams(Object.entries(query).map(([name, value]) => [name, String(value)]));
    return this.#send<Body<'listCalls', 200>>('GET', '/api/calls?' + search);
  }

  getCall(callId: operations['getCall']['parameters']['path']['callId']) {
    return this.#send<Body<'getCall', 200>>('GET', '/api/calls/' + encodeURIComponent(callId));
  }

  updateAgent(agentId: string, patch: RequestJson<'updateAgent'>) {
    return this.#send<Body<'updateAgent', 200>>('PATCH', '/api/agents/' + encodeURIComponent(agentId), patch);
  }

  createKey(key: RequestJson<'createKey'>) {
    return this.#send<Body<'createKey', 201>>('POST', '/api/keys', key);
  }
}

/** A webhook receiver's view of an event, typed from the document's \`webhooks\`. */
export function describeEvent(event: RequestJson<'onRecordingCompleted'>): string {
  // @ts-expect-error: a completed event is not a deletion
  const other: typeof event.type = 'recording.deleted';
  return event.id + ' ' + event.data.call_id + ' ' + (event.data.complete ? 'whole' : event.data.lost_spans.length + ' gaps') + other;
}

export async function report(client: CallrecClient): Promise<string> {
  const page = await client.listCalls({ limit: 10, status: 'ready' });
  const lines = page.data.map((call) => call.id + ' ' + (call.recording?.duration_ms ?? 0) + ' ms, held: ' + call.legal_hold);
  const agent = await client.updateAgent('support', { voice_tools: { call_recording: { storage_days: 30, format: 'wav' } } });
  const days: number = agent.voice_tools.call_recording.storage_days;
  const { secret } = await client.createKey({ name: 'ci', scopes: ['recordings:read'] });
  const next: string | null = page.next_cursor;
  // @ts-expect-error: a format the API does not offer
  await client.updateAgent('support', { voice_tools: { call_recording: { format: 'flac' } } });
  // @ts-expect-error: no scope of that name
  await client.createKey({ name: 'ci', scopes: ['everything'] });
  // @ts-expect-error: a call has no such field
  void page.data[0]?.no_such_field;
  // @ts-expect-error: a call may have no recording
  void (await client.getCall('c1')).recording.status;
  return lines.join('\\n') + days + secret + next;
}
`;

const TSCONFIG = {
  compilerOptions: {
    strict: true,
    noEmit: true,
    target: 'es2022',
    module: 'preserve',
    moduleResolution: 'bundler',
    lib: ['es2022', 'dom'],
    types: [],
  },
  files: ['client.ts'],
};

interface Operation {
  method: string;
  path: string;
  op: OpenAPIV3_1.OperationObject;
}

describe('a client generated from /openapi.json', () => {
  let ts: TestServer;
  let api: ApiHarness;
  let document: OpenAPIV3_1.Document;
  let operations: Map<string, Operation>;
  const produced = new Map<string, string>();
  const reshaped: string[] = [];

  beforeAll(async () => {
    ts = await startTestServer();
    document = (await (await fetch(`${ts.server.url}/openapi.json`)).json()) as OpenAPIV3_1.Document;
    operations = new Map(
      Object.entries(document.paths!).flatMap(([path, item]) =>
        Object.entries(item!)
          .filter(([, op]) => typeof op === 'object' && op !== null && 'operationId' in op)
          .map(([method, op]) => [
            (op as OpenAPIV3_1.OperationObject).operationId!,
            { method: method.toUpperCase(), path, op: op as OpenAPIV3_1.OperationObject },
          ]),
      ),
    );
    // What each handler answered, before and after Fastify's serializer: a serializer that
    // coerces a value to its schema's type or drops a field would hide a schema that is wrong.
    api = await startApi('sqlite', (app) => {
      app.addHook('preSerialization', async (request, _reply, payload) => {
        produced.set(request.id, JSON.stringify(payload));
        return payload;
      });
      app.addHook('onSend', async (request, _reply, payload) => {
        const before = produced.get(request.id);
        if (
          before !== undefined &&
          typeof payload === 'string' &&
          !isDeepStrictEqual(JSON.parse(payload), JSON.parse(before))
        ) {
          reshaped.push(`${request.method} ${request.url}: handler ${before}, sent ${payload}`);
        }
        return payload;
      });
    });
  });
  afterAll(async () => {
    await api?.close();
    await ts?.close();
  });

  test('type-checks against the types openapi-typescript generates', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'callrec-client-'));
    try {
      await fs.writeFile(path.join(dir, 'api.ts'), await openapiTS(document as never));
      await fs.writeFile(path.join(dir, 'client.ts'), CLIENT);
      await fs.writeFile(path.join(dir, 'tsconfig.json'), JSON.stringify(TSCONFIG));
      const checked = await run(path.join(ROOT, 'node_modules/.bin/tsc'), ['-p', dir]).then(
        () => '',
        (err: { stdout: string }) => err.stdout,
      );
      expect(checked).toBe('');
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  test("the server's real answers match the schemas the document declares", async () => {
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    addFormats.default(ajv);
    const seen = new Set<string>();

    /** Calls an operation by its operationId and checks the answer against the document. */
    async function call(
      operationId: string,
      opts: {
        params?: Record<string, string>;
        query?: string;
        body?: unknown;
        key?: string | null;
        base?: string;
        status?: number;
      } = {},
    ) {
      const { method, path: template, op } = operations.get(operationId)!;
      const url = template.replace(/\{(\w+)\}/g, (_, name: string) => encodeURIComponent(opts.params![name]));
      const key = opts.key === undefined ? OPERATOR : opts.key;
      const res = await fetch(`${opts.base ?? api.url}${url}${opts.query ?? ''}`, {
        method,
        headers: {
          ...(key ? { authorization: `Bearer ${key}` } : {}),
          ...(opts.body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      });
      // A success unless told otherwise: a serializer that fails on a wrong schema answers 500, in the error schema.
      expect({ operationId, status: opts.status === undefined ? res.ok : res.status }).toEqual({
        operationId,
        status: opts.status ?? true,
      });
      const declared = (op.responses![String(res.status)] ?? op.responses![`${String(res.status)[0]}XX`]) as
        | OpenAPIV3_1.ResponseObject
        | undefined;
      expect({ operationId, status: res.status, declared: declared !== undefined }).toEqual({
        operationId,
        status: res.status,
        declared: true,
      });
      const type = res.headers.get('content-type')?.split(';')[0];
      const body = Buffer.from(await res.arrayBuffer());
      if (!declared!.content) {
        expect({ operationId, bytes: body.length }).toEqual({ operationId, bytes: 0 });
      } else {
        expect(Object.keys(declared!.content)).toContain(type);
        if (type === 'application/json') {
          const json: unknown = JSON.parse(body.toString('utf8'));
          const validate = ajv.compile(declared!.content[type].schema as object);
          expect({ operationId, status: res.status, errors: validate(json) ? null : validate.errors }).toEqual({
            operationId,
            status: res.status,
            errors: null,
          });
        }
      }
      seen.add(operationId);
      return { status: res.status, body: type === 'application/json' ? JSON.parse(body.toString('utf8')) : body };
    }

    await api.store.keys.ensureOperatorKey(OPERATOR);
    await api.store.tenants.ensure('acme', 'Acme');
    await api.addCall('default', 'c-ready', { ended: true, recording: 'ready' });
    await api.addCall('default', 'c-live');
    await api.addCall('default', 'c-bare', { ended: true });

    await call('getMetrics', { base: ts.server.url, key: null });
    await call('getHealth', { key: null });
    await call('getReadiness', { key: null });
    await call('getMe');
    await call('createTenant', { body: { id: 'beta', name: 'Beta' } });
    await call('getTenant', { params: { tenantId: 'beta' } });
    await call('updateTenant', {
      params: { tenantId: 'beta' },
      body: { webhook_url: 'https://hooks.example/callrec', webhook_secret: 'a-secret-of-some-length' },
    });
    const { body: created } = await call('createKey', {
      body: { name: 'reader', scopes: ['recordings:read'], tenant_id: 'acme' },
    });
    await call('listKeys');
    await call('getKey', { params: { keyId: created.id } });
    await call('revokeKey', { params: { keyId: created.id } });
    for (const [update, get] of [
      ['updateAgent', 'getAgent'],
      ['updateAgentAtRoot', 'getAgentAtRoot'],
    ]) {
      await call(update, {
        params: { agentId: 'agent-1' },
        body: { voice_tools: { call_recording: { enabled: true, storage_days: 30 } } },
      });
      await call(get, { params: { agentId: 'agent-1' } });
    }
    await call('listAgents');
    await call('listAgentAudit', { params: { agentId: 'agent-1' } });
    await call('listCalls', { query: '?limit=2' });
    await call('getCall', { params: { callId: 'c-ready' } });
    await call('setLegalHold', { params: { callId: 'c-ready' }, body: { hold: false, reason: 'checked' } });
    const { body: minted } = await call('createPlaybackUrl', { params: { callId: 'c-ready' }, body: {} });
    expect(minted.url).toMatch(/token=/);
    await call('getRecordingAudio', { params: { callId: 'c-ready' } });
    await call('getRecordingPeaks', { params: { callId: 'c-ready' } });
    await call('controlRecording', { params: { callId: 'c-live' }, body: { action: 'pause' } });
    await call('getRecordingManifest', { params: { callId: 'c-ready' }, status: 404 });
    await new Evidence(api.store, api.keyring).seal((await api.store.recordings.getByCall('default', 'c-ready'))!);
    await call('getSigningKeys', { key: null });
    await call('getRecordingManifest', { params: { callId: 'c-ready' } });
    await call('getEvidencePackage', { params: { callId: 'c-ready' } });
    await call('deleteRecording', { params: { callId: 'c-ready' } });
    // Errors, each in the one error schema.
    await call('createTestCallToken', { status: 404 });
    await call('getCall', { params: { callId: 'nobody' }, status: 404 });
    await call('getCall', { params: { callId: 'c-bare' }, key: 'not-a-key', status: 401 });
    await call('updateAgent', {
      params: { agentId: 'agent-1' },
      body: { voice_tools: { call_recording: { storage_days: 0 } } },
      status: 400,
    });
    await call('getRecordingPeaks', { params: { callId: 'c-bare' }, status: 404 });

    expect([...operations.keys()].filter((id) => !seen.has(id))).toEqual([]);
    expect(reshaped).toEqual([]);
  });
});

/**
 * The fuzzer's mutations: of a provider stream's messages (real captures from `fixtures/`), and
 * of HTTP requests built from the server's own OpenAPI document. Pure: every choice comes from
 * the random source passed in, so a case is rebuilt exactly from its seed.
 */
import type { FixtureMessage } from '../src/replay/fixture.js';

export type Random = () => number;

export const pick = <T>(random: Random, items: readonly T[]): T => items[Math.floor(random() * items.length)];
export const between = (random: Random, lo: number, hi: number): number => lo + Math.floor(random() * (hi - lo + 1));

/** Values that break assumptions: wrong types, edge numbers, awkward text. */
const ODD_VALUES: readonly unknown[] = [
  null,
  true,
  false,
  0,
  -1,
  -0.5,
  1.5,
  2 ** 31,
  2 ** 53 + 1,
  1e308,
  -1e308,
  [],
  {},
  [1, 'a'],
  { a: { b: { c: [] } } },
  '',
  ' ',
  '0',
  '-1',
  '1e21',
  '99999999999999999999999',
  'NaN',
  'Infinity',
  'null',
  'true',
  '\u0000',
  '\ud800',
  '\udfff',
  '😀'.repeat(40),
  'é\u0301',
  '\u202eevil',
  '../..',
  '%00',
  '<script>',
  'x'.repeat(5000),
];

/** Stream parameters: odd values, and ordinary ones that change the path a stream takes (a bridge to a runtime that is not there). */
const PARAMETER_VALUES: readonly unknown[] = [
  ...ODD_VALUES,
  'ws://127.0.0.1:9/runtime',
  'bridge',
  'fork',
  'true',
  'false',
  'audio/l16;rate=8000',
  'audio/x-alaw',
  48000,
  8000,
];

/** Splices for text: JSON punctuation, escapes, keys providers use. */
const INTERESTING = [
  '"',
  '\\',
  '{',
  '}',
  '[',
  ']',
  ':',
  ',',
  ' ',
  '\n',
  '0',
  '7',
  '-',
  '.',
  'e',
  '=',
  'u',
  'n',
  '\u0001',
  '\u00c3',
  'A',
  '"media"',
  '"event":"media",',
  '"track":"inbound",',
  '"timestamp":"1",',
  'null',
  'true',
  '\\u0065',
  '1e3',
];

/** One splice at a random place: insert, delete or overwrite with an interesting token. */
export function splice(text: string, random: Random): string {
  const at = Math.floor(random() * (text.length + 1));
  const insert = pick(random, INTERESTING);
  switch (Math.floor(random() * 3)) {
    case 0:
      return text.slice(0, at) + insert + text.slice(at);
    case 1:
      return text.slice(0, at) + text.slice(at + 1 + Math.floor(random() * 3));
    default:
      return text.slice(0, at) + insert + text.slice(at + 1);
  }
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Path = Array<string | number>;

/** Every leaf's path in a JSON value. */
function leaves(value: Json, path: Path = [], out: Path[] = []): Path[] {
  if (value !== null && typeof value === 'object') {
    const entries = Array.isArray(value) ? value.map((v, i) => [i, v] as const) : Object.entries(value);
    for (const [key, child] of entries) leaves(child, [...path, key], out);
  } else out.push(path);
  return out;
}

function getAt(value: Json, path: Path): Json {
  return path.reduce<any>((v, key) => v?.[key], value);
}

function setAt(value: Json, path: Path, leaf: unknown): void {
  if (path.length === 0) return;
  const parent = getAt(value, path.slice(0, -1)) as any;
  if (parent !== null && typeof parent === 'object') parent[path.at(-1)!] = leaf;
}

function parse(message: FixtureMessage): Json | undefined {
  if (message.binary) return undefined;
  try {
    return JSON.parse(message.data as string) as Json;
  } catch {
    return undefined;
  }
}

const text = (value: unknown, binary = false): FixtureMessage => ({ t: 0, data: JSON.stringify(value), binary });

/** Changes one JSON message's leaves with `change`; a message that is not JSON gets a splice instead. */
function editJson(
  message: FixtureMessage,
  random: Random,
  change: (json: Json, paths: Path[]) => void,
): FixtureMessage {
  const json = parse(message);
  if (json === undefined || json === null || typeof json !== 'object')
    return { ...message, data: splice(String(message.data), random) };
  change(json, leaves(json));
  return { ...message, data: JSON.stringify(json) };
}

/** A media message's fields, by name, wherever the provider puts them. */
function mediaPaths(paths: Path[], name: string): Path[] {
  return paths.filter((p) => p.at(-1) === name);
}

const JUMPS = [3_600_000, 86_400_000, 2 ** 31, 2 ** 53, 1e21, -20, -3_600_000, 0];

/** A stream mutation: the messages after the start (index `start`) and the start itself are fair game. */
type StreamMutation = (messages: FixtureMessage[], start: number, random: Random) => FixtureMessage[];

const at = (messages: FixtureMessage[], random: Random, from = 0) => between(random, from, messages.length - 1);

const replaceAt = (messages: FixtureMessage[], i: number, message: FixtureMessage) => [
  ...messages.slice(0, i),
  message,
  ...messages.slice(i + 1),
];

export const STREAM_MUTATIONS: Record<string, StreamMutation> = {
  byteFlip(messages, _start, random) {
    const i = at(messages, random);
    const bytes = Buffer.from(messages[i].data);
    for (let n = between(random, 1, 8); n > 0 && bytes.length > 0; n--)
      bytes[Math.floor(random() * bytes.length)] ^= 1 << between(random, 0, 7);
    return replaceAt(messages, i, { ...messages[i], data: messages[i].binary ? bytes : bytes.toString('latin1') });
  },
  splice(messages, _start, random) {
    const i = at(messages, random);
    return messages[i].binary
      ? messages
      : replaceAt(messages, i, { ...messages[i], data: splice(messages[i].data as string, random) });
  },
  truncate(messages, _start, random) {
    const i = at(messages, random);
    const data = messages[i].data;
    return replaceAt(messages, i, { ...messages[i], data: data.slice(0, Math.floor(random() * data.length)) });
  },
  oversize(messages, _start, random) {
    const i = at(messages, random);
    const size = pick(random, [64 * 1024 + 1, 200 * 1024, 1024 * 1024 + 1]);
    const data = messages[i].binary
      ? Buffer.alloc(size, 0x7f)
      : JSON.stringify({ ...(parse(messages[i]) as object), pad: 'x'.repeat(size) });
    return replaceAt(messages, i, { ...messages[i], data });
  },
  wrongType(messages, _start, random) {
    const i = at(messages, random);
    return replaceAt(
      messages,
      i,
      editJson(
        messages[i],
        random,
        (json, paths) => paths.length && setAt(json, pick(random, paths), pick(random, ODD_VALUES)),
      ),
    );
  },
  fieldSwap(messages, _start, random) {
    const i = at(messages, random);
    return replaceAt(
      messages,
      i,
      editJson(messages[i], random, (json, paths) => {
        if (paths.length < 2) return;
        const [a, b] = [pick(random, paths), pick(random, paths)];
        const va = getAt(json, a);
        setAt(json, a, getAt(json, b));
        setAt(json, b, va);
      }),
    );
  },
  reshape(messages, _start, random) {
    const i = at(messages, random);
    const json = parse(messages[i]);
    return replaceAt(
      messages,
      i,
      text(
        pick(random, [
          [json],
          { event: json },
          'media',
          42,
          null,
          { event: (json as any)?.event },
          { ...(json as object), media: [json] },
        ]),
      ),
    );
  },
  timestampJump(messages, start, random) {
    const jump = pick(random, JUMPS);
    return messages.map((m, i) =>
      i > start && random() < 0.3
        ? editJson(m, random, (json, paths) => {
            for (const p of mediaPaths(paths, 'timestamp')) setAt(json, p, random() < 0.5 ? String(jump) : jump);
          })
        : m,
    );
  },
  reorder(messages, start, random) {
    const from = at(messages, random, start);
    const window = messages.slice(from, from + between(random, 2, 12));
    for (let k = window.length - 1; k > 0; k--) {
      const j = Math.floor(random() * (k + 1));
      [window[k], window[j]] = [window[j], window[k]];
    }
    return [...messages.slice(0, from), ...window, ...messages.slice(from + window.length)];
  },
  sequenceGap(messages, start, random) {
    const from = at(messages, random, start + 1);
    return [...messages.slice(0, from), ...messages.slice(from + between(random, 1, 50))];
  },
  binaryText(messages, _start, random) {
    const i = at(messages, random);
    return replaceAt(messages, i, { ...messages[i], binary: !messages[i].binary, data: Buffer.from(messages[i].data) });
  },
  duplicateStart(messages, start, random) {
    const i = at(messages, random, start);
    return [...messages.slice(0, i), messages[start], ...messages.slice(i)];
  },
  garbageBase64(messages, start, random) {
    const junk = pick(random, [
      '',
      '=',
      '====',
      'A',
      'AAA',
      '!!!!',
      `${'////'.repeat(41)}A`,
      'x'.repeat(3000),
      Buffer.from([0xff, 0xfe]).toString('latin1'),
      '\\u0041AAA',
    ]);
    const i = at(messages, random, start);
    return replaceAt(
      messages,
      i,
      editJson(messages[i], random, (json, paths) => {
        for (const p of mediaPaths(paths, 'payload')) setAt(json, p, junk);
      }),
    );
  },
  unicode(messages, _start, random) {
    const i = at(messages, random);
    return replaceAt(
      messages,
      i,
      editJson(messages[i], random, (json, paths) => {
        const strings = paths.filter((p) => typeof getAt(json, p) === 'string');
        if (strings.length)
          setAt(
            json,
            pick(random, strings),
            pick(random, ['\ud800', '😀', '\u0000', '\u202e', 'ǅ', '\uffff', 'é'.repeat(2000)]),
          );
      }),
    );
  },
  hugeNumber(messages, _start, random) {
    const i = at(messages, random);
    return replaceAt(
      messages,
      i,
      editJson(
        messages[i],
        random,
        (json, paths) =>
          paths.length &&
          setAt(
            json,
            pick(random, paths),
            pick(random, [1e308, -1e308, 2 ** 64, -(2 ** 63), 4294967297, '18446744073709551617']),
          ),
      ),
    );
  },
  parameters(messages, start, random) {
    return replaceAt(
      messages,
      start,
      editJson(messages[start], random, (json, paths) => {
        const named = paths.filter((p) =>
          [
            'agent_id',
            'token',
            'call_id',
            'mode',
            'agent_url',
            'bidirectional',
            'sampleRate',
            'sample_rate',
            'encoding',
            'content-type',
          ].includes(String(p.at(-1))),
        );
        if (named.length) setAt(json, pick(random, named), pick(random, PARAMETER_VALUES));
      }),
    );
  },
};

/** 1–3 stream mutations, named, applied in turn; `start` is the index of the start message. */
export function mutateStream(
  messages: FixtureMessage[],
  start: number,
  random: Random,
): { names: string[]; messages: FixtureMessage[] } {
  const names: string[] = [];
  for (let n = between(random, 1, 3); n > 0; n--) {
    const name = pick(random, Object.keys(STREAM_MUTATIONS));
    names.push(name);
    messages = STREAM_MUTATIONS[name](messages, start, random);
    if (messages.length === 0) break;
  }
  return { names, messages };
}

// --- HTTP ---

/** The parts of an OpenAPI 3 document the fuzzer reads. */
export interface OpenApiDocument {
  paths: Record<string, Record<string, OpenApiOperation>>;
}

export interface OpenApiOperation {
  parameters?: Array<{ in: 'path' | 'query' | 'header'; name: string; schema?: JsonSchema }>;
  requestBody?: { content?: Record<string, { schema?: JsonSchema }> };
  responses?: Record<string, unknown>;
}

export interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  items?: JsonSchema;
  enum?: unknown[];
  const?: unknown;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  minimum?: number;
  maximum?: number;
  maxLength?: number;
}

/** A value the schema would accept, mostly; the mutations make it wrong. */
function fromSchema(schema: JsonSchema | undefined, random: Random, depth = 0): Json {
  if (!schema || depth > 4) return null;
  if (schema.const !== undefined) return schema.const as Json;
  if (schema.enum) return pick(random, schema.enum) as Json;
  const options = schema.anyOf ?? schema.oneOf;
  if (options) return fromSchema(pick(random, options), random, depth + 1);
  const type = Array.isArray(schema.type) ? pick(random, schema.type) : schema.type;
  switch (type) {
    case 'object':
      return Object.fromEntries(
        Object.entries(schema.properties ?? {})
          .filter(() => random() < 0.7)
          .map(([k, s]) => [k, fromSchema(s, random, depth + 1)]),
      );
    case 'array':
      return Array.from({ length: between(random, 0, 3) }, () => fromSchema(schema.items, random, depth + 1));
    case 'integer':
    case 'number':
      return between(random, schema.minimum ?? 0, Math.min(schema.maximum ?? 100, (schema.minimum ?? 0) + 1000));
    case 'boolean':
      return random() < 0.5;
    case 'string':
      return pick(random, [
        'fuzz',
        'fuzz-agent',
        'wss://runtime.example/agent',
        'http://127.0.0.1:9/hook',
        'x'.repeat(schema.maxLength ?? 10),
      ]);
    default:
      return null;
  }
}

/** Ids that exist (the fuzz tenant's), that might, and that must be refused. */
const IDS = [
  'fuzz',
  'fuzz-target',
  'fuzz-missing',
  'default',
  '..',
  '.',
  '%2e%2e',
  'a%2Fb',
  '%00',
  '%ff',
  'x'.repeat(300),
  encodeURIComponent('😀é'),
  '-1',
  '99999999999999999999',
  'null',
  '%20',
  'a:b.c_d-e',
];

export interface FuzzRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string;
  /** The route's documented statuses (`responses`), which may include 5xx. */
  documented: string[];
}

/** A request to a random route of the document, with or without a valid key, any part of it mutated; `ids` are more path ids to try (calls that exist). */
export function httpRequest(
  doc: OpenApiDocument,
  key: string,
  random: Random,
  ids: readonly string[] = [],
): FuzzRequest {
  const routes = Object.entries(doc.paths).flatMap(([path, ops]) =>
    Object.entries(ops).map(([method, op]) => ({ path, method: method.toUpperCase(), op })),
  );
  const { path: template, method: declared, op } = pick(random, routes);
  const method = random() < 0.9 ? declared : pick(random, ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD']);
  const params = op.parameters ?? [];
  const path = template.replace(/\{([^}]+)\}/g, () =>
    ids.length && random() < 0.4 ? pick(random, ids) : pick(random, IDS),
  );
  const query = new URLSearchParams();
  for (const p of params.filter((p) => p.in === 'query')) {
    if (random() < 0.5)
      query.append(p.name, random() < 0.6 ? String(fromSchema(p.schema, random)) : String(pick(random, ODD_VALUES)));
  }
  if (random() < 0.2)
    query.append(pick(random, ['token', 'format', 'limit', 'cursor', 'x']), String(pick(random, ODD_VALUES)));
  const headers: Record<string, string> = {};
  const auth = pick(random, ['valid', 'valid', 'valid', 'none', 'garbage', 'scheme', 'suffix', 'long']);
  if (auth !== 'none') {
    headers.authorization = {
      valid: `Bearer ${key}`,
      garbage: 'Bearer crk_not-a-key',
      scheme: `Basic ${key}`,
      suffix: `Bearer ${key}x`,
      long: `Bearer ${'k'.repeat(8000)}`,
    }[auth]!;
  }
  if (random() < 0.2)
    headers.range = pick(random, [
      'bytes=0-',
      'bytes=-1',
      'bytes=999999999999-',
      'bytes=5-1',
      'bytes=0-1,2-3',
      'bytes=-0',
      'lines=1-2',
      'bytes=abc',
    ]);
  if (random() < 0.1) headers['x-forwarded-for'] = pick(random, ['1.2.3.4', 'garbage', '::1, 10.0.0.1', '']);
  let body: string | undefined;
  const schema = op.requestBody?.content?.['application/json']?.schema;
  if (method !== 'GET' && method !== 'HEAD' && (schema || random() < 0.3)) {
    const message: FixtureMessage = { t: 0, data: JSON.stringify(fromSchema(schema, random)), binary: false };
    const mutated =
      random() < 0.7
        ? pick(random, [
            STREAM_MUTATIONS.wrongType,
            STREAM_MUTATIONS.unicode,
            STREAM_MUTATIONS.hugeNumber,
            STREAM_MUTATIONS.fieldSwap,
            STREAM_MUTATIONS.splice,
          ])([message], 0, random)[0]
        : message;
    body = pick(random, [
      mutated.data as string,
      mutated.data as string,
      '{"a":',
      '',
      'null',
      '[]',
      '"text"',
      '{"__proto__":{"admin":true}}',
      '{}'.padEnd(2 * 1024 * 1024, ' '),
    ]);
    headers['content-type'] = pick(random, [
      'application/json',
      'application/json',
      'text/plain',
      'application/x-www-form-urlencoded',
      'application/json; charset=latin1',
    ]);
  }
  const search = query.toString();
  return {
    method,
    path: search ? `${path}?${search}` : path,
    headers,
    body,
    documented: Object.keys(op.responses ?? {}),
  };
}

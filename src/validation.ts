import type { TSchema } from 'typebox';
import type { TLocalizedValidationError } from 'typebox/error';

/** What is wrong with a value, in words: the dotted path of the field at fault ('' = the whole value) and why. */
export interface Problem {
  field: string;
  message: string;
}

type Node = Record<string, unknown>;

/** A JSON pointer's segment as written (`~1` is `/`, `~0` is `~`). */
const unescaped = (part: string) => part.replace(/~1/g, '/').replace(/~0/g, '~');

/** The schema node a JSON pointer (`#/properties/a/anyOf/0`) names. */
function resolve(schema: TSchema, pointer: string): Node {
  let node: unknown = schema;
  for (const part of pointer.replace(/^#\/?/, '').split('/').filter(Boolean)) {
    node = (node as Node | undefined)?.[unescaped(part)];
  }
  return (node ?? {}) as Node;
}

/** `instancePath` (`/a/0/b`) as people write it: `a.0.b`. */
const dotted = (pointer: string) => pointer.split('/').slice(1).map(unescaped).join('.');

const joined = (field: string, name: string) => (field ? `${field}.${name}` : name);

/** " from 1 to 3650", " of at least 1", " of at most 500", or '' for a schema without bounds. */
function bounds(min: unknown, max: unknown): string {
  if (typeof min === 'number' && typeof max === 'number') return ` from ${min} to ${max}`;
  if (typeof min === 'number') return ` of at least ${min}`;
  if (typeof max === 'number') return ` of at most ${max}`;
  return '';
}

/** " of 1 to 500 characters", " of at least 16 characters", or ''. */
function counted(min: unknown, max: unknown, unit: string): string {
  const range = bounds(min, max);
  return range && `${range.replace(/^ from /, ' of ')} ${unit}`;
}

/** What a value of `node` is, as a noun: "a whole number from 1 to 3650", "a string of 1 to 500 characters", `"mp3"`. */
function describe(node: Node): string {
  if (node.const !== undefined) return JSON.stringify(node.const);
  if (Array.isArray(node.enum))
    return `one of ${(node.enum as unknown[]).map((value) => JSON.stringify(value)).join(', ')}`;
  if (Array.isArray(node.anyOf)) return (node.anyOf as Node[]).map(describe).join(' or ');
  switch (node.type) {
    case 'integer':
      return `a whole number${bounds(node.minimum, node.maximum)}`;
    case 'number':
      return `a number${bounds(node.minimum, node.maximum)}`;
    case 'string':
      return `a string${counted(node.minLength, node.maxLength, 'characters')}`;
    case 'array':
      return `a list${counted(node.minItems, node.maxItems, 'items')}`;
    case 'null':
      return 'null';
    case 'boolean':
      return 'a boolean (true or false)';
    default:
      return `${/^[aeiou]/.test(String(node.type)) ? 'an' : 'a'} ${String(node.type ?? 'value')}`;
  }
}

/** Why `error` failed `node` (the schema node it names). */
function explainOne(error: TLocalizedValidationError, node: Node): string {
  switch (error.keyword) {
    case 'boolean':
    case 'additionalProperties':
      return 'unknown field';
    case 'required':
      return 'required field is missing';
    case 'pattern':
      // A schema may say in words what its pattern means (safe ids do).
      return typeof node['x-error-message'] === 'string'
        ? node['x-error-message']
        : `must match the pattern ${node.pattern as string}`;
    case 'format':
      return `must be a valid ${error.params.format}`;
    case 'type':
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum':
    case 'minLength':
    case 'maxLength':
    case 'minItems':
    case 'maxItems':
    case 'const':
    case 'enum':
      return `must be ${describe(node)}`;
    default:
      return error.message;
  }
}

/**
 * The first thing wrong with a value that failed `schema`, from TypeBox's errors, worded for
 * people and naming the field (TypeBox's own messages read "must be <= 3650"). A union is
 * explained as a whole: "must be "mp3", "wav" or "ogg"", "must be a string … or null".
 */
export function firstProblem(schema: TSchema, errors: readonly TLocalizedValidationError[]): Problem {
  const first = errors[0];
  if (first === undefined) return { field: '', message: 'is not valid' };
  // The outermost union the first error sits in: TypeBox lists each branch's errors, then the union's.
  const union = errors
    .filter((e) => e.keyword === 'anyOf' && first.schemaPath.startsWith(`${e.schemaPath}/anyOf/`))
    .sort((a, b) => a.schemaPath.length - b.schemaPath.length)[0];
  const subject = union ?? first;
  let field = dotted(subject.instancePath);
  if (first.keyword === 'required')
    field = joined(field, (first.params as { requiredProperties: string[] }).requiredProperties[0]);
  if (first.keyword === 'additionalProperties')
    field = joined(field, (first.params as { additionalProperties: string[] }).additionalProperties[0]);
  if (!union) return { field, message: explainOne(first, resolve(schema, first.schemaPath)) };
  const branches = resolve(schema, union.schemaPath).anyOf as Node[];
  const others = branches.filter((branch) => branch.type !== 'null');
  if (others.length === 1 && others.length < branches.length) {
    // A nullable field: why the value is not the one real branch, or null.
    const index = branches.indexOf(others[0]);
    const inner = errors.find((e) => e.schemaPath.startsWith(`${union.schemaPath}/anyOf/${index}`)) ?? first;
    return { field, message: `${explainOne(inner, resolve(schema, inner.schemaPath))}, or null` };
  }
  const words = branches.map(describe);
  return {
    field,
    message: `must be ${words.length > 1 ? `${words.slice(0, -1).join(', ')} or ${words.at(-1)}` : words[0]}`,
  };
}

import type { FastifySchemaCompiler, FastifyTypeProvider } from 'fastify';
import type { Static, TSchema } from '@sinclair/typebox';
import { TypeCompiler, type ValueError } from '@sinclair/typebox/compiler';
import { Value, ValueErrorType } from '@sinclair/typebox/value';
import { HttpError } from '../errors.js';

/**
 * Route types from `@sinclair/typebox` schemas. Hand-written because the installed
 * `@fastify/type-provider-typebox` (v6) targets the newer `typebox` package, whose schema
 * types ours do not satisfy.
 */
export interface TypeBoxProvider extends FastifyTypeProvider {
  validator: this['schema'] extends TSchema ? Static<this['schema']> : unknown;
  serializer: this['schema'] extends TSchema ? Static<this['schema']> : unknown;
}

function describe(schema: TSchema): string {
  if (schema.const !== undefined) return JSON.stringify(schema.const);
  if (schema.type === 'null') return 'null';
  if (schema.type === 'string' && schema.pattern) return `a string matching ${schema.pattern}`;
  return `a ${schema.type ?? 'value'}`;
}

function explain(error: ValueError): string {
  // A schema may say in words what its pattern means (safe ids do).
  if (error.type === ValueErrorType.StringPattern && typeof error.schema['x-error-message'] === 'string') return error.schema['x-error-message'];
  switch (error.type) {
    case ValueErrorType.ObjectAdditionalProperties:
      return 'unknown field';
    case ValueErrorType.ObjectRequiredProperty:
      return 'required field is missing';
    case ValueErrorType.Union:
      return `expected one of ${(error.schema.anyOf as TSchema[]).map(describe).join(', ')}`;
    default:
      return error.message.charAt(0).toLowerCase() + error.message.slice(1);
  }
}

/**
 * Validates with TypeBox instead of Fastify's default Ajv setup, which silently strips unknown
 * properties (`removeAdditional`) where we must reject them naming the field. URL parts arrive
 * as strings, so they are converted to the schema's types (and defaults filled) first.
 */
export const typeBoxValidatorCompiler: FastifySchemaCompiler<TSchema> = ({ schema, httpPart }) => {
  const check = TypeCompiler.Compile(schema);
  const fromUrl = httpPart === 'querystring' || httpPart === 'params' || httpPart === 'headers';
  return (input: unknown) => {
    const value = fromUrl ? Value.Convert(schema, Value.Default(schema, Value.Clone(input))) : input;
    if (check.Check(value)) return { value };
    const first = check.Errors(value).First()!;
    const field = first.path.slice(1).split('/').map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~')).join('.');
    const where = field === '' ? httpPart ?? 'request' : field;
    return { error: new HttpError('ERR_VALIDATION', `${where}: ${explain(first)}`, { field: field || undefined }) };
  };
};

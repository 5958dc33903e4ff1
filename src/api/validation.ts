import { TypeBoxValidatorCompiler } from '@fastify/type-provider-typebox';
import type { FastifySchemaCompiler } from 'fastify';
import type { TSchema } from 'typebox';
import type { TLocalizedValidationError } from 'typebox/error';
import { HttpError } from '../errors.js';
import { firstProblem } from '../validation.js';

/**
 * The official TypeBox validator (it rejects unknown properties where Fastify's default Ajv
 * setup silently strips them, and converts URL parts to the schema's types), with its errors
 * turned into the API's one 400: `ERR_VALIDATION` naming the field in words people read.
 */
export const validatorCompiler: FastifySchemaCompiler<TSchema> = (route) => {
  const validate = TypeBoxValidatorCompiler(route);
  return (input: unknown) => {
    const result = validate(input) as { value?: unknown; error?: TLocalizedValidationError[] };
    if (!result.error) return result;
    const { field, message } = firstProblem(route.schema, result.error);
    return {
      error: new HttpError('ERR_VALIDATION', `${field || route.httpPart || 'request'}: ${message}`, {
        field: field || undefined,
      }),
    };
  };
};

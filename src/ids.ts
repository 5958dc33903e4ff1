import { Type, type TStringOptions } from 'typebox';

/**
 * Ids that callers choose (call, agent, tenant, key) end up in object keys, spool file names,
 * Redis keys and log lines, so they are held to a set that is safe in all of them: letters,
 * digits and `- _ . :`, 1–128 characters, and never `.` or `..` (a path segment of its own).
 */
export const SAFE_ID_PATTERN = '^(?!\\.\\.?$)[A-Za-z0-9_.:-]{1,128}$';

const SAFE_ID = new RegExp(SAFE_ID_PATTERN);

/** What a rejected id is told, after the field's name. */
export const SAFE_ID_RULE = 'must be 1-128 letters, digits or - _ . : (and not . or ..)';

/** Whether `value` is a safe id (see `SAFE_ID_PATTERN`). */
export function isSafeId(value: unknown): value is string {
  return typeof value === 'string' && SAFE_ID.test(value);
}

/** The TypeBox schema of a safe id; the API's validator answers a mismatch with `SAFE_ID_RULE`. */
export function SafeId(options: TStringOptions = {}) {
  return Type.String({ pattern: SAFE_ID_PATTERN, 'x-error-message': SAFE_ID_RULE, ...options });
}

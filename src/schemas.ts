import { Type, type TSchema, type TSchemaOptions } from 'typebox';

/**
 * One of fixed strings. TypeBox's `Enum` writes `{"enum": [...]}` alone; the `type` beside it
 * lets client generators make a string enum of it rather than an untyped value.
 */
export const StringEnum = <const Values extends string[]>(values: readonly [...Values], options?: TSchemaOptions) =>
  Type.Enum(values, { type: 'string', ...options });

/** Audio a recording lost, in recording time (a crash, a full disk, dropped frames). */
export const LostSpanSchema = Type.Object({ start_ms: Type.Number(), end_ms: Type.Number(), reason: Type.String() });

/** `schema` or null. */
export const Nullable = <T extends TSchema>(schema: T, options?: TSchemaOptions) =>
  Type.Union([schema, Type.Null()], options);

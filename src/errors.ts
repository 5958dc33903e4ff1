/**
 * An error with a stable, machine-readable code (as `ws` and Node do), so callers branch on
 * `err.code` rather than on message text.
 */
export class CallrecError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CallrecError';
    this.code = code;
  }
}

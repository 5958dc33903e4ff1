/** WebSocket close codes (RFC 6455 §7.4.1) for each way a stream can go wrong. */
const CLOSE_CODES: Record<string, number> = {
  ERR_MALFORMED_MESSAGE: 1007,
  ERR_BAD_PAYLOAD: 1007,
  ERR_MESSAGE_TOO_LARGE: 1009,
  ERR_UNKNOWN_EVENT: 1003,
  ERR_UNSUPPORTED_CODEC: 1003,
  ERR_UNEXPECTED_MESSAGE: 1008,
  ERR_MISSING_AGENT: 1008,
  ERR_UNKNOWN_AGENT: 1008,
  ERR_BAD_TOKEN: 1008,
  ERR_BAD_PARAMETER: 1008,
  ERR_NO_RUNTIME: 1008,
  ERR_CALL_EXISTS: 1008,
  ERR_OVERLOADED: 1013,
  ERR_AGENT_UNREACHABLE: 1014,
  ERR_SHUTTING_DOWN: 1001,
};

/** `code: message`, cut to the 123 bytes a close frame's reason may hold. */
export function closeReason(code: string, message: string): string {
  const text = message.startsWith(code) ? message : `${code}: ${message}`;
  const bytes = Buffer.from(text);
  return bytes.length <= 123 ? text : bytes.subarray(0, 120).toString('utf8').replace(/\uFFFD*$/, '') + '...';
}

/** The close code for an error code; 1011 (internal error) for any other. */
export function closeCodeOf(code: string): number {
  return CLOSE_CODES[code] ?? 1011;
}

import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { CallrecError, errorCode, type ErrorCode } from '../errors.js';
import type { Logger } from '../log.js';
import type { CallControl, ControlAction, ControlResult } from './control.js';
import type { CallRegistry } from './registry.js';

interface ControlRequest {
  id: string;
  replyTo: string;
  tenantId: string;
  callId: string;
  action: ControlAction;
}

type ControlReply = { id: string; result: ControlResult } | { id: string; error: { code: ErrorCode; message: string } };

export interface RedisCallControlOptions {
  redisUrl: string;
  /** Channel prefix: nodes sharing it (and the database) form one cluster. */
  prefix: string;
  nodeId: string;
  registry: CallRegistry;
  log: Logger;
  /** How long to wait for the node holding the call to answer. */
  timeoutMs?: number;
}

/**
 * Call control across media nodes: a request for a call this node does not hold is published on
 * `<prefix>:control`; the node whose registry holds the call applies it and answers on the
 * asking node's own reply channel. Redis pub/sub, so a node needs no address of the others.
 */
export class RedisCallControl implements CallControl {
  readonly #opts: Required<RedisCallControlOptions>;
  readonly #pub: Redis;
  readonly #sub: Redis;
  readonly #waiting = new Map<string, (reply: ControlReply) => void>();

  constructor(opts: RedisCallControlOptions) {
    this.#opts = { timeoutMs: 3000, ...opts };
    this.#pub = new Redis(opts.redisUrl, { lazyConnect: true });
    this.#sub = new Redis(opts.redisUrl, { lazyConnect: true });
    for (const client of [this.#pub, this.#sub])
      client.on('error', (err: Error) => opts.log.warn({ err }, 'control bus: redis error'));
    this.#sub.on('message', (channel: string, message: string) => this.#onMessage(channel, message));
  }

  get #requests(): string {
    return `${this.#opts.prefix}:control`;
  }

  #replies(nodeId: string): string {
    return `${this.#opts.prefix}:control:reply:${nodeId}`;
  }

  async start(): Promise<void> {
    await Promise.all([this.#pub.connect(), this.#sub.connect()]);
    await this.#sub.subscribe(this.#requests, this.#replies(this.#opts.nodeId));
  }

  async close(): Promise<void> {
    this.#pub.disconnect();
    this.#sub.disconnect();
  }

  async control(tenantId: string, callId: string, action: ControlAction): Promise<ControlResult> {
    const local = this.#opts.registry.get(tenantId, callId);
    if (local) return local.control(action);
    const request: ControlRequest = { id: randomUUID(), replyTo: this.#opts.nodeId, tenantId, callId, action };
    const reply = await new Promise<ControlReply | null>((resolve) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(request.id);
        resolve(null);
      }, this.#opts.timeoutMs);
      this.#waiting.set(request.id, (r) => {
        clearTimeout(timer);
        this.#waiting.delete(request.id);
        resolve(r);
      });
      this.#pub.publish(this.#requests, JSON.stringify(request)).catch(() => {});
    });
    if (!reply)
      throw new CallrecError(
        'ERR_UNAVAILABLE',
        `no media node answered for call ${callId} within ${this.#opts.timeoutMs} ms`,
      );
    if ('error' in reply) throw new CallrecError(reply.error.code, reply.error.message);
    return reply.result;
  }

  #onMessage(channel: string, message: string): void {
    let parsed: ControlRequest | ControlReply;
    try {
      parsed = JSON.parse(message);
    } catch {
      return;
    }
    if (channel !== this.#requests) {
      this.#waiting.get(parsed.id)?.(parsed as ControlReply);
      return;
    }
    const request = parsed as ControlRequest;
    const session = this.#opts.registry.get(request.tenantId, request.callId);
    if (!session) return; // another node holds it (or nobody does: the asker times out)
    session.control(request.action).then(
      (result) => this.#reply(request, { id: request.id, result }),
      (err: Error) =>
        this.#reply(request, {
          id: request.id,
          error: { code: errorCode(err) ?? 'ERR_INTERNAL', message: err.message },
        }),
    );
  }

  #reply(request: ControlRequest, reply: ControlReply): void {
    this.#pub
      .publish(this.#replies(request.replyTo), JSON.stringify(reply))
      .catch((err: Error) => this.#opts.log.warn({ err }, 'control bus: reply failed'));
  }
}

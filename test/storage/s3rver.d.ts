// s3rver ships no types; this covers what the tests use.
declare module 's3rver' {
  import type { Server } from 'node:http';
  import type { AddressInfo } from 'node:net';

  export default class S3rver {
    constructor(options: {
      port?: number;
      address?: string;
      silent?: boolean;
      directory: string;
      configureBuckets?: { name: string }[];
    });
    run(): Promise<AddressInfo>;
    close(): Promise<void>;
    httpServer: Server;
    /** Koa's middleware list (S3rver is a Koa app); composed when the server starts. */
    middleware: S3rverMiddleware[];
  }

  export type S3rverMiddleware = (ctx: S3rverContext, next: () => Promise<void>) => Promise<void>;

  export interface S3rverContext {
    /** The Node request (Koa's `ctx.req`). */
    req: import('node:http').IncomingMessage;
    method: string;
    query: Record<string, string | undefined>;
    headers: Record<string, string | undefined>;
    status: number;
    body: unknown;
    set(field: string, value: string): void;
    response: { get(field: string): string };
  }
}

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export interface ReceivedWebhook {
  headers: http.IncomingHttpHeaders;
  body: string;
  /** The status the receiver answered. */
  status: number;
}

/** A customer's webhook endpoint on a free local port: records every request, answers 204 (or fails on demand). */
export class WebhookReceiver {
  readonly requests: ReceivedWebhook[] = [];
  readonly #server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const status = this.#failures > 0 ? 500 : 204;
      if (this.#failures > 0) this.#failures--;
      this.requests.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), status });
      res.writeHead(status).end();
    });
  });
  #failures = 0;

  static async start(): Promise<WebhookReceiver> {
    const receiver = new WebhookReceiver();
    await new Promise<void>((resolve) => receiver.#server.listen(0, '127.0.0.1', resolve));
    return receiver;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/hooks`;
  }

  /** The next `n` requests are answered 500. */
  failNext(n: number): void {
    this.#failures = n;
  }

  /** Requests answered 2xx. */
  get delivered(): ReceivedWebhook[] {
    return this.requests.filter((r) => r.status < 300);
  }

  /** Waits until `n` requests were answered 2xx. */
  async waitForDelivered(n: number, timeoutMs = 20_000): Promise<ReceivedWebhook[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.delivered.length < n) {
      if (Date.now() > deadline) throw new Error(`expected ${n} webhook deliveries, got ${this.delivered.length}`);
      await sleep(20);
    }
    return this.delivered;
  }

  close(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}

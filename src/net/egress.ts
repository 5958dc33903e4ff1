import dns from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import net, { BlockList, type LookupFunction } from 'node:net';
import type { Duplex } from 'node:stream';
import { Counter } from 'prom-client';
import { HttpError } from '../errors.js';

/** Every URL a tenant or a stream supplies, by the setting that names it (the refusal metric's `target`). */
export const EGRESS_TARGETS = ['agent_ws_url', 'agent_url', 'webhook_url', 'storage_endpoint'] as const;
export type EgressTarget = (typeof EGRESS_TARGETS)[number];

/** A host's addresses, as `dns.lookup(host, { all: true })` gives them. */
export type Resolver = (hostname: string) => Promise<Array<{ address: string; family: number }>>;

export interface EgressPolicyOptions {
  /** `EGRESS_ALLOW`: CIDRs, addresses or host names a tenant may reach though they are internal. */
  allow?: readonly string[];
  /** How host names are resolved; default `dns.lookup` (tests pass their own). */
  resolve?: Resolver;
}

/**
 * Where a tenant may not send the node: loopback, link-local (cloud metadata at 169.254.169.254 and
 * fd00:ec2::254), private (RFC 1918, ULA), CGNAT, multicast, unspecified, reserved and the
 * documentation ranges. IPv4-mapped IPv6 addresses (::ffff:127.0.0.1) match their IPv4 rule
 * (`BlockList` compares them so); NAT64 and 6to4 addresses carry an IPv4 one, checked apart.
 */
const INTERNAL_V4: Array<[string, number]> = [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.88.99.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
];
const INTERNAL_V6: Array<[string, number]> = [
  ['::', 128],
  ['::1', 128],
  ['::', 96] /* IPv4-compatible (deprecated) */,
  ['64:ff9b:1::', 48],
  ['100::', 64],
  ['2001:db8::', 32],
  ['fc00::', 7],
  ['fe80::', 10],
  ['fec0::', 10],
  ['ff00::', 8],
];

function blockList(entries: Array<[string, number]>, type: 'ipv4' | 'ipv6', into = new BlockList()): BlockList {
  for (const [address, prefix] of entries) into.addSubnet(address, prefix, type);
  return into;
}

const INTERNAL = blockList(INTERNAL_V6, 'ipv6', blockList(INTERNAL_V4, 'ipv4'));

const NAT64 = blockList([['64:ff9b::', 96]], 'ipv6');
const SIX_TO_FOUR = blockList([['2002::', 16]], 'ipv6');

/** The IPv4 address a NAT64 (64:ff9b::/96) or 6to4 (2002::/16) address stands for; null for any other. */
function embeddedV4(address: string): string | null {
  const at = NAT64.check(address, 'ipv6') ? 6 : SIX_TO_FOUR.check(address, 'ipv6') ? 1 : -1;
  if (at < 0) return null;
  const groups = expandV6(address);
  const [hi, lo] = [groups[at], groups[at + 1]];
  return [hi >> 8, hi & 255, lo >> 8, lo & 255].join('.');
}

/** An IPv6 address's eight groups (a trailing dotted quad read as two). */
function expandV6(address: string): number[] {
  let text = address.split('%')[0];
  const quad = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (quad) {
    const [a, b, c, d] = quad.slice(1).map(Number);
    text = `${text.slice(0, quad.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.split('::');
  const parse = (part: string | undefined) => (part ? part.split(':').map((g) => parseInt(g, 16)) : []);
  const [h, t] = [parse(head), parse(tail)];
  return tail === undefined ? h : [...h, ...new Array(8 - h.length - t.length).fill(0), ...t];
}

/** Whether `address` (an IP literal) lies in a range a tenant may not reach. */
export function isInternalAddress(address: string): boolean {
  const family = net.isIP(address);
  if (family === 4) return INTERNAL.check(address, 'ipv4');
  if (family !== 6) return true; // not an address: nothing to connect to
  if (INTERNAL.check(address, 'ipv6')) return true;
  const v4 = embeddedV4(address);
  return v4 !== null && INTERNAL.check(v4, 'ipv4');
}

/** The error a refused URL raises: `field` names the setting (or stream parameter) at fault. */
export class EgressRefusedError extends HttpError {
  constructor(field: string, message: string) {
    super('ERR_EGRESS_REFUSED', `${field}: ${message}`, { field });
  }
}

const systemResolve: Resolver = (hostname) => dns.promises.lookup(hostname, { all: true, verbatim: true });

/** A URL's host as the socket would use it: IPv6 literals lose their brackets. */
function hostOf(url: URL): string {
  return url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
}

/**
 * The egress policy for URLs tenants and streams supply (issue 23): a host resolving to an
 * internal address is refused unless `EGRESS_ALLOW` names it. Checking a URL ahead of time is
 * not enough (its DNS may answer differently at connect time), so connections go through this
 * policy's agents, whose `lookup` resolves and checks the very addresses the socket then
 * connects to; IP literals, which Node connects to without a lookup, are checked before the
 * connect. The operator's own configuration (STORAGE_URL, REDIS_URL…) does not pass here.
 */
export class EgressPolicy {
  /** `callrec_egress_refused_total{target}`: registered by whoever serves the metrics. */
  readonly refused = new Counter({
    name: 'callrec_egress_refused_total',
    help: 'Connections to tenant-supplied URLs refused by the egress policy, by setting',
    labelNames: ['target'] as const,
    registers: [],
  });
  readonly #allowedAddresses = new BlockList();
  readonly #allowedHosts = new Set<string>();
  readonly #resolve: Resolver;
  readonly #agents = new Map<string, http.Agent>();

  constructor(opts: EgressPolicyOptions = {}) {
    this.#resolve = opts.resolve ?? systemResolve;
    // Series that exist from the start, so a rate over them is 0 rather than absent.
    for (const target of EGRESS_TARGETS) this.refused.inc({ target }, 0);
    for (const entry of opts.allow ?? []) {
      const [address, bits] = entry.split('/');
      const family = net.isIP(address);
      if (family === 0) this.#allowedHosts.add(entry.toLowerCase().replace(/\.$/, ''));
      else
        this.#allowedAddresses.addSubnet(
          address,
          bits === undefined ? (family === 4 ? 32 : 128) : Number(bits),
          family === 4 ? 'ipv4' : 'ipv6',
        );
    }
  }

  /** Whether `EGRESS_ALLOW` names this host (checked as the URL spells it, before any lookup). */
  allowsHost(host: string): boolean {
    return this.#allowedHosts.has(host.toLowerCase().replace(/\.$/, ''));
  }

  /** Whether a tenant may reach this resolved address. */
  allowsAddress(address: string): boolean {
    return (
      !isInternalAddress(address) || this.#allowedAddresses.check(address, net.isIP(address) === 4 ? 'ipv4' : 'ipv6')
    );
  }

  /**
   * Whether `EGRESS_ALLOW` vouches for `url`'s host: by name, or every address it resolves to
   * lies in an allowed CIDR. What may be reached over plain http:// (webhooks).
   */
  async allowlisted(url: URL): Promise<boolean> {
    const host = hostOf(url);
    if (this.allowsHost(host)) return true;
    const addresses = net.isIP(host)
      ? [host]
      : await this.#resolve(host).then(
          (all) => all.map((a) => a.address),
          () => [],
        );
    return (
      addresses.length > 0 &&
      addresses.every((address) => this.#allowedAddresses.check(address, net.isIP(address) === 4 ? 'ipv4' : 'ipv6'))
    );
  }

  /**
   * Resolves `url`'s host and checks every address it has (one internal address refuses the
   * host: which one a connect would pick is not ours to choose). Rejects `EgressRefusedError`
   * naming `field`. For configuration time, where a host that does not resolve (yet) passes:
   * connections check again through `agent`, which refuses it then.
   */
  async check(url: string | URL, field: string, target: EgressTarget): Promise<void> {
    const host = hostOf(typeof url === 'string' ? new URL(url) : url);
    if (net.isIP(host) || this.allowsHost(host)) {
      await this.#addresses(host, field, target);
      return;
    }
    this.#refuseInternal(host, await this.#resolve(host).catch(() => []), field, target);
  }

  /**
   * An agent for `target`'s connections over `protocol` (`http:`/`ws:` or `https:`/`wss:`):
   * every socket it opens is to an address this policy allowed. No keep-alive: sockets are not
   * shared across tenants' hosts.
   */
  agent(target: EgressTarget, protocol: string): http.Agent {
    const secure = protocol === 'https:' || protocol === 'wss:';
    const key = `${target}:${secure}`;
    let agent = this.#agents.get(key);
    if (!agent) {
      const lookup = this.#lookup(target);
      const guard = (options: http.ClientRequestArgs): Error | null => {
        const host = String(options.host ?? options.hostname ?? '');
        const literal = host.startsWith('[') ? host.slice(1, -1) : host;
        if (net.isIP(literal) && !this.allowsHost(literal) && !this.allowsAddress(literal))
          return this.#refuse(target, target, `${literal} is an internal address (allow it with EGRESS_ALLOW)`);
        return null;
      };
      // Node's agents call createConnection(options, callback) and take a falsy return as "the
      // callback will say": a refused literal becomes the request's error without a connect.
      type Create = (
        options: http.ClientRequestArgs,
        callback: (err: Error | null, socket?: Duplex) => void,
      ) => Duplex | undefined;
      const pinned =
        (create: Create): Create =>
        (options, callback) => {
          const refused = guard(options);
          if (refused) {
            callback(refused);
            return undefined;
          }
          return create({ ...options, lookup } as http.ClientRequestArgs, callback);
        };
      agent = secure
        ? new (class extends https.Agent {
            override createConnection = pinned(super.createConnection.bind(this) as Create) as never;
          })()
        : new (class extends http.Agent {
            override createConnection = pinned(super.createConnection.bind(this) as Create) as never;
          })();
      this.#agents.set(key, agent);
    }
    return agent;
  }

  /** A `net`/`tls` `lookup` that yields only addresses the policy allows (or fails, refusing). */
  #lookup(target: EgressTarget): LookupFunction {
    return (hostname, options, callback) => {
      this.#addresses(hostname, target, target).then(
        (addresses) => {
          const wanted =
            options.family === 4 || options.family === 6
              ? addresses.filter((a) => a.family === options.family)
              : addresses;
          if (wanted.length === 0)
            return callback(
              Object.assign(new Error(`${hostname} has no IPv${options.family} address`), { code: 'ENOTFOUND' }),
              '',
              0,
            );
          if (options.all) (callback as unknown as (err: null, all: typeof addresses) => void)(null, wanted);
          else callback(null, wanted[0].address, wanted[0].family);
        },
        (err: Error) => callback(err as NodeJS.ErrnoException, '', 0),
      );
    };
  }

  async #addresses(
    host: string,
    field: string,
    target: EgressTarget,
  ): Promise<Array<{ address: string; family: number }>> {
    const allowedByName = this.allowsHost(host);
    if (net.isIP(host)) {
      if (!allowedByName && !this.allowsAddress(host))
        throw this.#refuse(field, target, `${host} is an internal address (allow it with EGRESS_ALLOW)`);
      return [{ address: host, family: net.isIP(host) }];
    }
    let addresses;
    try {
      addresses = await this.#resolve(host);
    } catch (err) {
      throw this.#refuse(
        field,
        target,
        `${host} does not resolve (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
      );
    }
    if (addresses.length === 0) throw this.#refuse(field, target, `${host} does not resolve`);
    if (!allowedByName) this.#refuseInternal(host, addresses, field, target);
    return addresses;
  }

  #refuseInternal(host: string, addresses: Array<{ address: string }>, field: string, target: EgressTarget): void {
    const internal = addresses.find((a) => !this.allowsAddress(a.address));
    if (internal)
      throw this.#refuse(
        field,
        target,
        `${host} resolves to the internal address ${internal.address} (allow it with EGRESS_ALLOW)`,
      );
  }

  #refuse(field: string, target: EgressTarget, message: string): EgressRefusedError {
    this.refused.inc({ target });
    return new EgressRefusedError(field, message);
  }
}

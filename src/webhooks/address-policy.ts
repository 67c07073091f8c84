// Where a webhook may be sent. A user names the URL, so without these checks a webhook would let
// anyone make this server call into its own network (SSRF): the cloud metadata service at
// 169.254.169.254, a database on 10.0.0.5, an admin page on 127.0.0.1. Only public unicast
// addresses are called. A name is resolved when each attempt connects, every address it resolves
// to is checked, and the connection goes to the address that was checked (so a name that
// resolves to a public address at registration and to a private one later — DNS rebinding — is
// refused then). A development setting names hosts that may be local, for a receiver on a laptop.
import type { LookupAddress, LookupOptions } from 'node:dns';
import { lookup as dnsLookup } from 'node:dns/promises';
import ipaddr from 'ipaddr.js';

/** Every address a name resolves to (the system resolver by default; tests pass their own). */
export type Resolve = (hostname: string) => Promise<string[]>;

/** Lookups of the system resolver in flight at once: they take threads of libuv's small pool. */
const LOOKUPS_AT_ONCE = 2;
const LOOKUP_TIMEOUT_MS = 2000;
let lookups = 0;
const waiting: (() => void)[] = [];

/**
 * Every address the system resolver gives for a name (getaddrinfo: /etc/hosts, then DNS), as
 * HTTP clients resolve. Its lookups wait in libuv's thread pool without a time limit of their own,
 * so at most two run at once (the others queue) and each is given up after 2 s: names that never
 * answer cannot take the threads that file access and other lookups need.
 */
export const systemResolve: Resolve = async (hostname) => {
  if (lookups >= LOOKUPS_AT_ONCE) await new Promise<void>((resolve) => waiting.push(resolve));
  lookups++;
  let timer: NodeJS.Timeout | undefined;
  try {
    const found = await Promise.race([
      dnsLookup(hostname, { all: true, verbatim: true }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(Object.assign(new Error(`no answer for ${hostname}`), { code: 'ETIMEOUT' })), LOOKUP_TIMEOUT_MS);
      }),
    ]);
    return found.map((a) => a.address);
  } finally {
    clearTimeout(timer);
    lookups--;
    waiting.shift()?.();
  }
};

export interface AddressPolicy {
  /** Production: only https URLs. */
  httpsOnly: boolean;
  /** Hosts (names or addresses, lower case) that may be anything, local included: development only. */
  allowedHosts: ReadonlySet<string>;
  resolve: Resolve;
}

/** Why a URL is refused: said to the user, at registration and in an attempt's error. */
export class RefusedUrl extends Error {}

const RANGE_WORDS: Record<string, string> = {
  unspecified: 'an unspecified',
  broadcast: 'a broadcast',
  multicast: 'a multicast',
  linkLocal: 'a link-local',
  loopback: 'a loopback',
  carrierGradeNat: 'a carrier-grade NAT',
  private: 'a private',
  uniqueLocal: 'a unique-local',
  reserved: 'a reserved',
};

const GLOBAL_UNICAST_V6 = ipaddr.parseCIDR('2000::/3');

/** Why this address may not be called, or undefined when it is public unicast. */
export function refusedAddress(address: string): string | undefined {
  if (!ipaddr.isValid(address)) return `${address} is not an IP address`;
  let ip: ipaddr.IPv4 | ipaddr.IPv6 = ipaddr.parse(address);
  // ::ffff:10.0.0.1 is 10.0.0.1 to the network stack; judged as that.
  if (ip.kind() === 'ipv6' && (ip as ipaddr.IPv6).isIPv4MappedAddress()) ip = (ip as ipaddr.IPv6).toIPv4Address();
  const range = ip.range();
  // Public IPv6 unicast is 2000::/3 (RFC 4291, IANA); anything else ipaddr.js calls unicast is
  // unassigned or, like the IPv4-compatible ::a00:1, a way to name an IPv4 address.
  if (range === 'unicast' && ip.kind() === 'ipv6' && !ip.match(GLOBAL_UNICAST_V6)) {
    return `${ip.toString()} is not a global unicast IPv6 address (2000::/3), which webhooks may call only`;
  }
  if (range === 'unicast') return undefined;
  return `${ip.toString()} is ${RANGE_WORDS[range] ?? `a special-purpose (${range})`} address, which webhooks may not call`;
}

/** The URL's host as written for comparisons: lower case, without IPv6 brackets or a final dot. */
const hostOf = (url: URL) =>
  url.hostname
    .toLowerCase()
    .replace(/^\[|\]$/g, '')
    .replace(/\.$/, '');

/** The URL's host as an address, when it is one (brackets of an IPv6 literal removed). */
function literalAddress(host: string): string | undefined {
  return ipaddr.isValid(host) && (host.includes(':') || ipaddr.IPv4.isValidFourPartDecimal(host)) ? host : undefined;
}

/**
 * The URL parsed, or why it is refused, by its form alone (no resolution): http(s), https only in
 * production, no credentials or fragment, and a literal address only if it is public.
 */
export function parseWebhookUrl(raw: string, policy: Pick<AddressPolicy, 'httpsOnly' | 'allowedHosts'>): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new RefusedUrl('must be an absolute URL, such as https://example.com/hooks/todo');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new RefusedUrl('must be an http or https URL');
  if (url.username || url.password)
    throw new RefusedUrl('must not carry a user name or password; put a secret in the path instead, or verify the signature');
  // url.hash is empty for a bare '#', which would still be stored.
  if (url.hash || raw.includes('#')) throw new RefusedUrl('must not have a fragment (#...)');
  const host = hostOf(url);
  if (policy.allowedHosts.has(host)) return url;
  const literal = literalAddress(host);
  const why = literal
    ? refusedAddress(literal)
    : host === 'localhost' || host.endsWith('.localhost')
      ? `${host} is a loopback name, which webhooks may not call`
      : undefined;
  // Outside production the refusal says how to reach a receiver on this machine.
  if (why)
    throw new RefusedUrl(
      policy.httpsOnly ? why : `${why} (for a receiver on this machine, start the server with WEBHOOK_ALLOWED_HOSTS=${host})`,
    );
  if (policy.httpsOnly && url.protocol !== 'https:') throw new RefusedUrl('must be an https URL: this server sends webhooks over TLS only');
  return url;
}

/** Where an attempt connects: an address checked now, or undefined for an allowed host (resolved as usual). */
export async function checkedAddress(url: URL, policy: AddressPolicy): Promise<{ address: string; family: 4 | 6 } | undefined> {
  const host = hostOf(url);
  if (policy.allowedHosts.has(host)) return undefined;
  const literal = literalAddress(host);
  let addresses: string[];
  if (literal) addresses = [literal];
  else {
    try {
      addresses = await policy.resolve(host);
    } catch (err) {
      throw new Error(`cannot resolve ${host}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    if (addresses.length === 0) throw new Error(`cannot resolve ${host}: no address`);
  }
  // Every address is checked, not only the one used: a name that mixes a public address with a
  // private one is someone's way in.
  for (const address of addresses) {
    const why = refusedAddress(address);
    if (why && literal) throw new RefusedUrl(why);
    // Which address, or which kind, is not said for a name: the answer would map the names of the
    // network this server is in (kubernetes.default.svc → 10.x) for whoever asks.
    if (why)
      throw new RefusedUrl(
        `${host} resolves to an address that is not public (loopback, private, link-local or reserved), which webhooks may not call`,
      );
  }
  const address = addresses[0]!;
  return { address, family: address.includes(':') ? 6 : 4 };
}

/** A `lookup` for http.request that answers with the address already checked, and nothing else. */
export function pinnedLookup(pinned: { address: string; family: 4 | 6 }) {
  return (
    _hostname: string,
    options: LookupOptions,
    callback: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
  ) => {
    if (options.all) callback(null, [pinned]);
    else callback(null, pinned.address, pinned.family);
  };
}

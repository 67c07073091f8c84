// DATABASE_URL's TLS and channel-binding parameters, read the way libpq reads them, so a URL means
// here what it means to psql. node-postgres reads sslmode its own way (require verifies, with a
// multi-line warning) and ignores channel_binding; those parameters are taken out of the URL
// before it reaches node-postgres and are turned into explicit options instead.
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';

export const SSL_MODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'] as const;
export const CHANNEL_BINDINGS = ['disable', 'prefer', 'require'] as const;
export type SslMode = (typeof SSL_MODES)[number];
export type ChannelBinding = (typeof CHANNEL_BINDINGS)[number];

/** What the URL asks for; checked at start (config.ts), files not read yet. */
export interface PostgresUrlSettings {
  /** The URL without the parameters below, for node-postgres. */
  connectionString: string;
  sslMode: SslMode;
  channelBinding: ChannelBinding;
  /** A CA file; "system" means the platform's trusted CAs (as libpq ≥ 16). */
  sslRootCert: string | undefined;
  sslCert: string | undefined;
  sslKey: string | undefined;
}

/** How node-postgres connects: the TLS options to try first, and the ones to fall back to. */
export interface PostgresConnectOptions {
  connectionString: string;
  ssl: false | ConnectionOptions;
  /** prefer: plain text when the server has no TLS; allow: TLS when the server wants it. */
  fallback: false | ConnectionOptions | undefined;
  channelBinding: ChannelBinding;
}

export class PostgresUrlError extends Error {
  override name = 'PostgresUrlError';
}

const TAKEN_OUT = ['sslmode', 'sslrootcert', 'sslcert', 'sslkey', 'channel_binding', 'ssl', 'uselibpqcompat'];

function oneOf<T extends string>(name: string, value: string | null, allowed: readonly T[], fallback: T): T {
  if (value === null) return fallback;
  if (!(allowed as readonly string[]).includes(value)) {
    throw new PostgresUrlError(`${name}=${value} is not one of ${allowed.join(', ')}`);
  }
  return value as T;
}

export function parsePostgresUrl(raw: string): PostgresUrlSettings {
  const url = new URL(raw);
  const p = url.searchParams;
  // libpq's defaults: TLS when the server offers it, channel binding when TLS and SCRAM allow it.
  const sslMode = oneOf('sslmode', p.get('sslmode'), SSL_MODES, 'prefer');
  const channelBinding = oneOf('channel_binding', p.get('channel_binding'), CHANNEL_BINDINGS, 'prefer');
  if (channelBinding === 'require' && (sslMode === 'disable' || sslMode === 'allow')) {
    throw new PostgresUrlError(`channel_binding=require needs TLS, but sslmode=${sslMode}`);
  }
  const settings: PostgresUrlSettings = {
    connectionString: '',
    sslMode,
    channelBinding,
    sslRootCert: p.get('sslrootcert') ?? undefined,
    sslCert: p.get('sslcert') ?? undefined,
    sslKey: p.get('sslkey') ?? undefined,
  };
  if (Boolean(settings.sslCert) !== Boolean(settings.sslKey)) throw new PostgresUrlError('sslcert and sslkey go together');
  for (const name of TAKEN_OUT) p.delete(name);
  settings.connectionString = url.toString();
  return settings;
}

function readPem(what: string, file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new PostgresUrlError(`cannot read ${what} file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** The TLS options for a mode, as libpq documents them; reads the certificate files named. */
export function connectOptions(s: PostgresUrlSettings): PostgresConnectOptions {
  const clientCert = s.sslCert && s.sslKey ? { cert: readPem('sslcert', s.sslCert), key: readPem('sslkey', s.sslKey) } : {};
  const ca = s.sslRootCert && s.sslRootCert !== 'system' ? { ca: readPem('sslrootcert', s.sslRootCert) } : {};
  const encryptOnly: ConnectionOptions = { ...clientCert, rejectUnauthorized: false };
  // verify-ca: the chain must lead to the CA, whatever name the certificate carries.
  const verifyChain: ConnectionOptions = { ...clientCert, ...ca, rejectUnauthorized: true, checkServerIdentity: () => undefined };
  const verifyAll: ConnectionOptions = { ...clientCert, ...ca, rejectUnauthorized: true };
  const base = { connectionString: s.connectionString, channelBinding: s.channelBinding };
  switch (s.sslMode) {
    case 'disable':
      return { ...base, ssl: false, fallback: undefined };
    case 'allow':
      return { ...base, ssl: false, fallback: encryptOnly };
    case 'prefer':
      return { ...base, ssl: encryptOnly, fallback: false };
    case 'require':
      // libpq: with a root certificate, require verifies the chain as verify-ca does.
      return { ...base, ssl: s.sslRootCert ? verifyChain : encryptOnly, fallback: undefined };
    case 'verify-ca':
      return { ...base, ssl: verifyChain, fallback: undefined };
    case 'verify-full':
      return { ...base, ssl: verifyAll, fallback: undefined };
  }
}

/** Whether a failed connection is the one the fallback exists for. */
export function wantsFallback(opts: PostgresConnectOptions, err: unknown): boolean {
  const message = err instanceof Error ? err.message : '';
  if (opts.fallback === false) return /does not support SSL/i.test(message);
  if (opts.fallback) return /no encryption|SSL off|pg_hba\.conf rejects connection.*no encryption/i.test(message);
  return false;
}

/** A connection failure in one line that names its cause, as psql would. */
export function describeConnectError(err: unknown, settings: Pick<PostgresUrlSettings, 'sslMode' | 'sslRootCert'>): string {
  const e = err as { code?: string; message?: string } | null;
  const message = e?.message ?? String(err);
  const code = e?.code ?? '';
  const tlsHint =
    settings.sslMode === 'verify-full' || settings.sslMode === 'verify-ca' || settings.sslRootCert
      ? settings.sslRootCert
        ? ` (sslrootcert=${settings.sslRootCert})`
        : ': add sslrootcert=<the CA file> to DATABASE_URL for a private CA, or sslmode=require to encrypt without verifying'
      : '';
  switch (code) {
    case '28P01':
      return 'password authentication failed: check the user and password in DATABASE_URL';
    case '28000':
      return `the server refused this connection: ${message}`;
    case '3D000':
      return `${message}: check the database name in DATABASE_URL`;
    case 'ECONNREFUSED':
      return "connection refused: nothing listens at DATABASE_URL's host and port";
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'the host in DATABASE_URL cannot be resolved';
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
    case 'SELF_SIGNED_CERT_IN_CHAIN':
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
    case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY':
      return `the server's TLS certificate is not signed by a trusted CA${tlsHint}`;
    case 'ERR_TLS_CERT_ALTNAME_INVALID':
      return `the server's TLS certificate is not for this host name (sslmode=verify-full): ${message}`;
    case 'CERT_HAS_EXPIRED':
      return "the server's TLS certificate has expired";
  }
  if (/does not support SSL/i.test(message)) return `the server does not accept TLS, but sslmode=${settings.sslMode} requires it`;
  return message.split('\n')[0]!;
}

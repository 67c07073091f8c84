// A throwaway PostgreSQL cluster that speaks only TLS, with a certificate from a private CA made
// here with openssl, SCRAM-SHA-256 for the role `app` and MD5 for the role `legacy`: what a
// managed database such as Neon looks like to a client, on loopback. Needs PostgreSQL's own
// binaries (initdb, pg_ctl), openssl, and root (the cluster runs as the `postgres` user).
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface TlsCluster {
  port: number;
  /** The private CA's certificate, for sslrootcert. */
  caFile: string;
  password: string;
  stop(): void;
}

function binDir(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const version = readdirSync(root).sort((a, b) => Number(b) - Number(a))[0];
  const dir = version && path.join(root, version, 'bin');
  return dir && existsSync(path.join(dir, 'initdb')) ? dir : undefined;
}

/** Why a TLS cluster cannot be made on this machine, or undefined when it can. */
export function tlsClusterUnavailable(): string | undefined {
  if (!binDir()) return "PostgreSQL's server binaries (initdb, pg_ctl) are not installed";
  if (process.getuid?.() !== 0) return 'the cluster runs as the postgres user, which needs root to start';
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    execFileSync('id', ['postgres'], { stdio: 'ignore' });
  } catch {
    return 'openssl or the postgres user is missing';
  }
  return undefined;
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as { port: number };
  await new Promise((resolve) => s.close(resolve));
  return port;
}

const asPostgres = (cmd: string, args: string[]) =>
  execFileSync('su', ['postgres', '-s', '/bin/sh', '-c', [cmd, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ')], {
    stdio: 'pipe',
  });

export async function startTlsCluster(): Promise<TlsCluster> {
  const bin = binDir()!;
  const dir = mkdtempSync(path.join(tmpdir(), 'todo-tls-'));
  const data = path.join(dir, 'data');
  const file = (name: string) => path.join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
  // A private CA, and a server certificate it signs for the name "localhost" only.
  openssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '2',
    '-subj',
    '/CN=todo-api test CA',
    '-keyout',
    file('ca.key'),
    '-out',
    file('ca.crt'),
  );
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-keyout', file('server.key'), '-out', file('server.csr'));
  writeFileSync(file('san.ext'), 'subjectAltName = DNS:localhost\n');
  openssl(
    'x509',
    '-req',
    '-in',
    file('server.csr'),
    '-CA',
    file('ca.crt'),
    '-CAkey',
    file('ca.key'),
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    file('san.ext'),
    '-out',
    file('server.crt'),
  );
  const password = 'tls-test-password';
  writeFileSync(file('pw'), `${password}\n`);
  execFileSync('chown', ['-R', 'postgres', dir]);
  chmodSync(dir, 0o755);
  chmodSync(file('server.key'), 0o600);
  chownSync(file('ca.crt'), 0, 0);
  chmodSync(file('ca.crt'), 0o644);

  asPostgres(path.join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=scram-sha-256', `--pwfile=${file('pw')}`]);
  const port = await freePort();
  writeFileSync(
    path.join(data, 'postgresql.auto.conf'),
    `${[
      `port = ${port}`,
      "listen_addresses = '127.0.0.1'",
      `unix_socket_directories = '${dir}'`,
      'ssl = on',
      `ssl_cert_file = '${file('server.crt')}'`,
      `ssl_key_file = '${file('server.key')}'`,
      "password_encryption = 'scram-sha-256'",
      'max_connections = 40',
      'fsync = off',
    ].join('\n')}\n`,
  );
  // TLS only; `legacy` logs in with MD5, everyone else with SCRAM-SHA-256.
  writeFileSync(
    path.join(data, 'pg_hba.conf'),
    `${['local all postgres scram-sha-256', 'hostssl all legacy 127.0.0.1/32 md5', 'hostssl all all 127.0.0.1/32 scram-sha-256', 'hostnossl all all 0.0.0.0/0 reject'].join('\n')}\n`,
  );
  execFileSync('chown', ['-R', 'postgres', data]);
  asPostgres(path.join(bin, 'pg_ctl'), ['-D', data, '-l', file('server.log'), '-w', '-t', '60', 'start']);
  const psql = (sql: string) =>
    execFileSync('psql', ['-v', 'ON_ERROR_STOP=1', '-h', dir, '-p', String(port), '-U', 'postgres', '-d', 'postgres', '-c', sql], {
      env: { ...process.env, PGPASSWORD: password },
      stdio: 'pipe',
    });
  psql(`CREATE ROLE app LOGIN PASSWORD '${password}'`);
  psql('CREATE DATABASE neondb OWNER app');
  psql(`SET password_encryption = 'md5'; CREATE ROLE legacy LOGIN PASSWORD '${password}'`);
  psql('GRANT ALL ON DATABASE neondb TO legacy');

  return {
    port,
    caFile: file('ca.crt'),
    password,
    stop: () => {
      try {
        asPostgres(path.join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', 'stop']);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

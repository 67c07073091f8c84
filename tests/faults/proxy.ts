// A TCP proxy on loopback between the server and PostgreSQL that a test can cut: `refuse` closes
// every open connection and refuses new ones (the database is gone); `blackhole` accepts
// connections and swallows every byte, on open connections too (the database hangs); `forward`
// carries on.
import net from 'node:net';

export type ProxyMode = 'forward' | 'refuse' | 'blackhole';

export interface CuttableProxy {
  port: number;
  set(mode: ProxyMode): Promise<void>;
  close(): Promise<void>;
}

export async function startProxy(target: { host: string; port: number }): Promise<CuttableProxy> {
  let mode: ProxyMode = 'forward';
  const open = new Set<net.Socket>();
  const track = (s: net.Socket) => {
    open.add(s);
    s.on('close', () => open.delete(s));
    s.on('error', () => s.destroy());
  };
  const server = net.createServer((client) => {
    track(client);
    if (mode === 'refuse') return client.destroy();
    if (mode === 'blackhole') return client.resume(); // read and drop, never answer
    const upstream = net.connect(target);
    track(upstream);
    // Bytes move only while forwarding: a blackhole also silences connections already open, as a
    // network partition would.
    client.on('data', (d) => mode === 'forward' && upstream.write(d));
    upstream.on('data', (d) => mode === 'forward' && client.write(d));
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  const listen = (port: number) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port, host: '127.0.0.1' }, () => resolve());
    });
  await listen(0);
  const port = (server.address() as net.AddressInfo).port;
  const cutAll = () => {
    for (const s of open) s.destroy();
  };

  return {
    port,
    async set(next) {
      mode = next;
      // Refused: every connection is cut. Restored: connections that lost bytes in a blackhole
      // cannot carry on either.
      if (next !== 'blackhole') cutAll();
      if (next === 'refuse' && server.listening) await new Promise<void>((r) => server.close(() => r()));
      if (next !== 'refuse' && !server.listening) await listen(port);
    },
    async close() {
      cutAll();
      if (server.listening) await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

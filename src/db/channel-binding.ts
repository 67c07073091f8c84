// channel_binding=require, as libpq does it: the connection must authenticate with
// SCRAM-SHA-256-PLUS over TLS, which binds the password exchange to the server's certificate, so
// a man in the middle holding another certificate cannot relay it. node-postgres uses PLUS when the
// server offers it (enableChannelBinding) but accepts anything else; this client refuses instead:
// a plain, MD5 or trust authentication, or a server that does not offer PLUS.
import pg from 'pg';

const WITHOUT_BINDING = 'channel binding required, but server authenticated client without channel binding';
const NOT_OFFERED = 'channel binding is required, but server did not offer an authentication method that supports channel binding';

/** The parts of pg.Client this subclass hooks; they are not in its published types. */
interface ClientInternals {
  connection: { emit(event: 'error', err: Error): boolean; stream: unknown };
  _connecting: boolean;
  _handleAuthCleartextPassword(msg: unknown): void;
  _handleAuthMD5Password(msg: unknown): void;
  _handleAuthSASL(msg: { mechanisms: string[] }): void;
  _handleReadyForQuery(msg: unknown): void;
}

export class ChannelBindingError extends Error {
  override name = 'ChannelBindingError';
  readonly code = 'CHANNEL_BINDING_REQUIRED';
}

type Internal = pg.Client & ClientInternals;
const Base = pg.Client as unknown as new (config: pg.ClientConfig) => Internal;

export class ChannelBoundClient extends Base {
  private bound = false;

  private refuse(message: string): void {
    this.connection.emit('error', new ChannelBindingError(message));
  }

  override _handleAuthCleartextPassword(): void {
    this.refuse(WITHOUT_BINDING);
  }

  override _handleAuthMD5Password(): void {
    this.refuse(WITHOUT_BINDING);
  }

  override _handleAuthSASL(msg: { mechanisms: string[] }): void {
    const tls = typeof (this.connection.stream as { getPeerCertificate?: unknown }).getPeerCertificate === 'function';
    if (!tls || !msg.mechanisms.includes('SCRAM-SHA-256-PLUS')) {
      this.refuse(NOT_OFFERED);
      return;
    }
    this.bound = true;
    super._handleAuthSASL(msg);
  }

  override _handleReadyForQuery(msg: unknown): void {
    // Reached without any SCRAM exchange: the server let us in on trust (or a pooler's own auth).
    if (this._connecting && !this.bound) {
      this.refuse(WITHOUT_BINDING);
      return;
    }
    super._handleReadyForQuery(msg);
  }
}

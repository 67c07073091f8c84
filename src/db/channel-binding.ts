// channel_binding=require, as libpq does it: the connection must authenticate with
// SCRAM-SHA-256-PLUS over TLS, which binds the password exchange to the server's certificate, so
// a man in the middle holding another certificate cannot relay it. node-postgres uses PLUS when the
// server offers it (enableChannelBinding) but accepts anything else; this client refuses instead:
// a plain, MD5 or trust authentication, a server that does not offer PLUS, and a server that lets
// the client in before SCRAM's final message proved it knows the password's verifier (its
// signature over the channel binding, checked by node-postgres's finalizeSession). Like libpq, the
// connection counts as bound only once that final message has been verified.
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
  _handleAuthSASLFinal(msg: { data: string }): void;
  _handleReadyForQuery(msg: unknown): void;
  /** Set by _handleAuthSASL, cleared by _handleAuthSASLFinal once the server's signature verified. */
  saslSession: { mechanism: string } | null | undefined;
}

export class ChannelBindingError extends Error {
  override name = 'ChannelBindingError';
  readonly code = 'CHANNEL_BINDING_REQUIRED';
}

type Internal = pg.Client & ClientInternals;
const Base = pg.Client as unknown as new (config: pg.ClientConfig) => Internal;

export class ChannelBoundClient extends Base {
  /** PLUS was offered over TLS and the exchange started. */
  private started = false;
  /** The server's final SCRAM message verified, for a SCRAM-SHA-256-PLUS exchange. */
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
    this.started = true;
    super._handleAuthSASL(msg);
  }

  override _handleAuthSASLFinal(msg: { data: string }): void {
    const mechanism = this.saslSession?.mechanism;
    super._handleAuthSASLFinal(msg);
    // node-postgres clears the session only when the server's signature matched; on a mismatch it
    // has already failed the connection.
    if (this.started && mechanism === 'SCRAM-SHA-256-PLUS' && this.saslSession === null) this.bound = true;
  }

  override _handleReadyForQuery(msg: unknown): void {
    // Reached without a verified SCRAM-PLUS exchange: the server let us in on trust (or a pooler's
    // own auth), or before proving it knows the verifier (a relay that skipped the final message).
    if (this._connecting && !this.bound) {
      this.refuse(WITHOUT_BINDING);
      return;
    }
    super._handleReadyForQuery(msg);
  }
}

import type pg from 'pg';

/**
 * `COPY … FROM STDIN` in one round trip. The Query message, the data and CopyDone leave in one
 * write, without waiting for the server's CopyInResponse first (pg-copy-streams waits for it,
 * which under load was a quarter of a commit's latency, BENCHMARKS.md). The protocol allows it:
 * the server reads the data once the statement enters copy-in mode, and if the statement fails
 * before that, "any subsequent CopyData, CopyDone, or CopyFail messages issued by the frontend
 * will simply be dropped" (PostgreSQL, "Frontend/Backend Protocol", COPY Operations).
 *
 * `sql` may hold more statements after the COPY: one simple query, which PostgreSQL runs as one
 * implicit transaction, committed before it answers. Resolves on ReadyForQuery after success,
 * rejects with the server's error (nothing of the query string is then stored).
 *
 * A node-postgres Submittable: the client queues it like any other query and hands it the
 * backend's messages while it is the active one.
 */

interface Socket {
  cork(): void;
  uncork(): void;
  write(chunk: Buffer): boolean;
}

class OneWriteCopy {
  private failed = false;

  constructor(
    private readonly sql: string,
    private readonly data: Buffer,
    private readonly done: (err: Error | null) => void,
  ) {}

  submit(connection: { stream: Socket }): void {
    const sqlLength = Buffer.byteLength(this.sql);
    const head = Buffer.allocUnsafe(1 + 4 + sqlLength + 1 + 1 + 4);
    let at = head.writeUInt8(0x51, 0); // 'Q' Query
    at = head.writeInt32BE(4 + sqlLength + 1, at);
    at += head.write(this.sql, at, 'utf8');
    at = head.writeUInt8(0, at);
    at = head.writeUInt8(0x64, at); // 'd' CopyData
    head.writeInt32BE(4 + this.data.length, at);
    const tail = Buffer.from([0x63, 0, 0, 0, 4]); // 'c' CopyDone
    connection.stream.cork();
    connection.stream.write(head);
    connection.stream.write(this.data);
    connection.stream.write(tail);
    connection.stream.uncork();
  }

  /** The data is already on its way. */
  handleCopyInResponse(): void {}

  handleCommandComplete(): void {}

  /** Statements after the COPY are not expected to return rows; any that do are ignored. */
  handleRowDescription(): void {}

  handleDataRow(): void {}

  handleEmptyQuery(): void {}

  handleError(err: Error): void {
    this.failed = true;
    this.done(err);
  }

  handleReadyForQuery(): void {
    if (!this.failed) this.done(null);
  }

  /** node-postgres replaces this with its query-timeout hook when one is configured. */
  callback(): void {}
}

export function copyInOneWrite(client: pg.ClientBase, sql: string, data: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    client.query(new OneWriteCopy(sql, data, (err) => (err ? reject(err) : resolve())));
  });
}

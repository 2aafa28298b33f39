/**
 * Server-sent events framing over a raw Node response. (better-sse was tried first: it takes the
 * request's 'close' event as the client leaving, which Node 20 emits as soon as Koa has read the
 * request, so streams died at random. The framing itself is a few lines: data is one-line JSON.)
 */
import type http from 'node:http';

const streams = new Set<SseWriter>();

/** Ends every SSE stream of this process (graceful shutdown). */
export function endAllStreams(): void {
  for (const w of [...streams]) w.end();
}

export class SseWriter {
  private open = true;
  private readonly closeHandlers: Array<() => void> = [];

  constructor(private readonly res: http.ServerResponse, headers: Record<string, string> = {}, retryMs = 2000) {
    res.socket?.setNoDelay(true);
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache, no-transform',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
      ...headers,
    });
    res.write(`retry: ${retryMs}\n\n`);
    // The response's 'close' is the client (or we) ending the stream.
    res.once('close', () => this.closed());
    streams.add(this);
  }

  get isOpen(): boolean {
    return this.open;
  }

  /** One SSE frame (data is one line of JSON). */
  static frame(event: string, data: unknown, id?: string | number): string {
    return `${id !== undefined ? `id: ${id}\n` : ''}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
  }

  send(event: string, data: unknown, id?: string | number): void {
    if (!this.open) return;
    this.res.write(SseWriter.frame(event, data, id));
  }

  /**
   * Writes a frame made by SseWriter.frame(), e.g. once for every stream of a session: as a
   * Buffer it is encoded once, not once per client.
   */
  sendFrame(frame: string | Buffer): void {
    if (!this.open) return;
    this.res.write(frame);
  }

  /** Resolves once the client has taken what was written (at once if nothing waits, or it is gone). */
  drained(): Promise<void> {
    if (!this.open || !this.res.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.res.off('drain', done);
        this.res.off('close', done);
        resolve();
      };
      this.res.once('drain', done);
      this.res.once('close', done);
    });
  }

  onClose(fn: () => void): void {
    if (!this.open) fn();
    else this.closeHandlers.push(fn);
  }

  end(): void {
    if (!this.open) return;
    this.res.end();
    this.closed();
  }

  private closed() {
    if (!this.open) return;
    this.open = false;
    streams.delete(this);
    for (const fn of this.closeHandlers.splice(0)) fn();
  }
}

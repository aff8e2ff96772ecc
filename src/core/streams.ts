/**
 * Byte streams: gzip recognised by content. Used by every reader that accepts `.gz` files or
 * compressed pipes.
 */
import { pipeline, Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';

/**
 * The chunks of `source`, gunzipped when its first bytes are the gzip magic. Stopping early
 * (break / return) tears the chain down and closes the source.
 */
export async function* maybeGunzip(
  source: AsyncIterable<Buffer>,
  onGzip?: () => void,
): AsyncGenerator<Buffer> {
  const it = source[Symbol.asyncIterator]();
  const first = await it.next();
  if (first.done) return;
  const head = first.value;
  async function* rest(): AsyncGenerator<Buffer> {
    try {
      yield head;
      for (;;) {
        const n = await it.next();
        if (n.done) return;
        yield n.value;
      }
    } finally {
      await it.return?.();
    }
  }
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) {
    onGzip?.();
    const z = pipeline(Readable.from(rest()), createGunzip(), () => {});
    for await (const c of z) yield c as Buffer;
  } else yield* rest();
}

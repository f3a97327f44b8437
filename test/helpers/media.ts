import { randomBytes } from 'node:crypto';

/** A PNG of the given size: its signature and IHDR, then bytes no decoder needs for the size (as a real image's data). */
export function png(width: number, height: number, bodyBytes = 200_000): Buffer {
  const head = Buffer.alloc(33);
  head.write('\x89PNG\r\n\x1a\n', 0, 'latin1');
  head.writeUInt32BE(13, 8);
  head.write('IHDR', 12, 'latin1');
  head.writeUInt32BE(width, 16);
  head.writeUInt32BE(height, 20);
  head.writeUInt8(8, 24);
  head.writeUInt8(6, 25);
  return Buffer.concat([head, randomBytes(bodyBytes)]);
}

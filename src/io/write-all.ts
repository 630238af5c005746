// writeSync may write fewer bytes than asked (and takes at most 2 GiB a call): loop until all are out.
import { writeSync } from 'node:fs';

export function writeAll(fd: number, b: Uint8Array): void {
  let off = 0;
  while (off < b.length) off += writeSync(fd, b, off, Math.min(b.length - off, 1 << 30));
}

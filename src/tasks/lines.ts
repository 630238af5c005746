// Line reading for dataset and input files, shared by every reader: streamed in blocks (multi-GB tables never
// sit in memory whole), linear in the file size, and with a bound on one line, so a file without newlines
// cannot make a reader buffer all of it.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

/** Longest line accepted: an EasyNLP row carries a base64 image (48 MiB of image in 64 MiB of base64). */
export const MAX_LINE_BYTES = 64 * 2 ** 20;
/** Largest index file read whole (CSV, caption .txt, lists). */
export const MAX_INDEX_FILE_BYTES = 256 * 2 ** 20;

export interface Line { no: number; offset: number; bytes: Buffer }

/**
 * Lines of a file with their 1-based numbers and byte offsets (the trailing \n dropped, a \r kept). A line's
 * bytes may be a view of the read buffer: use them before asking for the next line.
 */
export function* fileLines(file: string, maxLineBytes = MAX_LINE_BYTES): Generator<Line> {
  const fd = openSync(file, 'r');
  try {
    const block = Buffer.allocUnsafe(1 << 20);
    // Pieces of the line being read: joined once, when its end is found (not re-copied per block).
    let parts: Buffer[] = [];
    let partBytes = 0;
    let lineAt = 0; // file offset of the current line's start
    let pos = 0;
    let no = 0;
    const tooLong = (): Error => new Error(`${file}:${no + 1}: line longer than ${maxLineBytes / 2 ** 20} MiB (the limit for one row)`);
    for (;;) {
      const n = readSync(fd, block, 0, block.length, pos);
      const data = block.subarray(0, n);
      let s = 0;
      for (let nl = data.indexOf(10, s); nl >= 0; nl = data.indexOf(10, s)) {
        if (partBytes + nl - s > maxLineBytes) throw tooLong();
        const bytes = parts.length ? Buffer.concat([...parts, data.subarray(s, nl)]) : data.subarray(s, nl);
        yield { no: ++no, offset: lineAt, bytes };
        lineAt += bytes.length + 1;
        parts = [];
        partBytes = 0;
        s = nl + 1;
      }
      pos += n;
      if (n === 0) {
        if (partBytes) yield { no: ++no, offset: lineAt, bytes: Buffer.concat(parts) };
        return;
      }
      if (s < n) {
        partBytes += n - s;
        if (partBytes > maxLineBytes) throw tooLong();
        // Copied: `block` is reused by the next read.
        parts.push(Buffer.from(data.subarray(s)));
      }
    }
  } finally {
    closeSync(fd);
  }
}

/** The text of a file read whole, refused past `max` bytes before reading (index files, caption files). */
export function readTextBounded(file: string, what: string, max = MAX_INDEX_FILE_BYTES): string {
  const fd = openSync(file, 'r');
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new Error(`${what} ${file}: not a file`);
    if (st.size > max) throw new Error(`${what} ${file}: ${(st.size / 2 ** 20).toFixed(0)} MiB, above the limit of ${max / 2 ** 20} MiB for this kind of file`);
    const buf = Buffer.allocUnsafe(st.size);
    let got = 0;
    while (got < st.size) {
      const n = readSync(fd, buf, got, st.size - got, got);
      if (n === 0) break;
      got += n;
    }
    return buf.toString('utf8', 0, got);
  } finally {
    closeSync(fd);
  }
}

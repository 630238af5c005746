// A safetensors writer that produces one tensor at a time: the header needs only names and shapes,
// so a ViT-B model (600 MB) or its optimizer state (1.2 GB) is written without first converting the
// whole of it to checkpoint layout and gathering it into one file-sized buffer (io/safetensors.ts).
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';

export interface LazyTensor {
  name: string;
  shape: number[];
  /** float32 data in `shape`, produced when its turn comes (may be a fresh conversion). */
  data: () => Float32Array;
}

export function writeSafetensorsLazily(path: string, tensors: LazyTensor[], metadata?: Record<string, string>): void {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of tensors) {
    if (t.name in header) throw new Error(`${path}: tensor "${t.name}" given twice`);
    const bytes = t.shape.reduce((a, b) => a * b, 1) * 4;
    header[t.name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  // The data section starts 8-byte aligned, as the reference writer does.
  while ((8 + Buffer.byteLength(json)) % 8 !== 0) json += ' ';
  const head = Buffer.alloc(8);
  head.writeBigUInt64LE(BigInt(Buffer.byteLength(json)), 0);
  const fd = openSync(path, 'w');
  try {
    writeAll(fd, head);
    writeAll(fd, Buffer.from(json, 'utf8'));
    for (const t of tensors) {
      const d = t.data();
      const want = t.shape.reduce((a, b) => a * b, 1);
      if (d.length !== want) throw new Error(`${path}: tensor "${t.name}" has ${d.length} values, its shape says ${want}`);
      writeAll(fd, new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
    }
    // The file is renamed into place as part of a checkpoint: its bytes must be on disk first.
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function writeAll(fd: number, b: Uint8Array): void {
  let off = 0;
  while (off < b.length) off += writeSync(fd, b, off, Math.min(b.length - off, 1 << 30));
}

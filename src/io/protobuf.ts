// A minimal protobuf *writer*: ONNX models are protobuf, and we only ever need to emit a handful of
// message types. Messages are kept as lists of byte chunks so that large weight blobs are copied
// exactly once, into the final model buffer.

export class ProtoWriter {
  private parts: Uint8Array[] = [];
  length = 0;

  private push(b: Uint8Array): void {
    this.parts.push(b);
    this.length += b.length;
  }

  private varint(v: number | bigint): void {
    let x = BigInt.asUintN(64, BigInt(v));
    const bytes: number[] = [];
    while (x >= 0x80n) {
      bytes.push(Number(x & 0x7fn) | 0x80);
      x >>= 7n;
    }
    bytes.push(Number(x));
    this.push(Uint8Array.from(bytes));
  }

  private smallVarint(v: number): void {
    // Fast path for non-negative numbers below 2^31 (tags, lengths, enum values).
    if (v < 0 || v > 0x7fffffff) return this.varint(v);
    const bytes: number[] = [];
    while (v >= 0x80) {
      bytes.push((v & 0x7f) | 0x80);
      v >>>= 7;
    }
    bytes.push(v);
    this.push(Uint8Array.from(bytes));
  }

  private tag(field: number, wire: number): void {
    this.smallVarint((field << 3) | wire);
  }

  int(field: number, v: number | bigint): this {
    this.tag(field, 0);
    if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0x7fffffff) this.smallVarint(v);
    else this.varint(v);
    return this;
  }

  float(field: number, v: number): this {
    this.tag(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.push(b);
    return this;
  }

  bytes(field: number, b: Uint8Array): this {
    this.tag(field, 2);
    this.smallVarint(b.length);
    this.push(b);
    return this;
  }

  string(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s));
  }

  message(field: number, m: ProtoWriter): this {
    this.tag(field, 2);
    this.smallVarint(m.length);
    for (const p of m.parts) this.push(p);
    return this;
  }

  packedInts(field: number, vs: readonly (number | bigint)[]): this {
    const inner = new ProtoWriter();
    for (const v of vs) inner.varint(v);
    return this.message(field, inner);
  }

  /** The encoded bytes as the chunks they were built from (no copy): for streaming a large message to a file. */
  chunks(): readonly Uint8Array[] {
    return this.parts;
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.length);
    let off = 0;
    for (const p of this.parts) {
      out.set(p, off);
      off += p.length;
    }
    return out;
  }
}

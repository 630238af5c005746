// Arrow columns for LanceStore, built straight from typed arrays: going through JS objects
// (makeArrowTable) costs seconds per 100k 512-dim rows, which matters for bulk loads.
import { Field, FixedSizeList, Float32, Float64, Int32, makeData, RecordBatch, Schema, Struct, Table, Utf8, type Vector } from 'apache-arrow';
import type { ImageMeta, StoreInfo, VectorRecord } from './store.js';

export const INFO_KEY = 'clip-ts.store';

export function storeSchema(info: StoreInfo): Schema {
  return new Schema([
    new Field('id', new Utf8(), false),
    new Field('vector', new FixedSizeList(info.dim, new Field('item', new Float32(), true)), false),
    new Field('path', new Utf8(), false),
    new Field('size', new Float64(), false),
    new Field('mtime', new Float64(), false),
    new Field('width', new Int32(), false),
    new Field('height', new Int32(), false),
    new Field('hash', new Utf8(), false),
  ], new Map([[INFO_KEY, JSON.stringify(info)]]));
}

function utf8(values: string[]) {
  const enc = new TextEncoder();
  const parts = values.map((v) => enc.encode(v));
  const offsets = new Int32Array(values.length + 1);
  parts.forEach((p, i) => (offsets[i + 1] = offsets[i]! + p.length));
  const bytes = new Uint8Array(offsets[values.length]!);
  parts.forEach((p, i) => bytes.set(p, offsets[i]!));
  return makeData({ type: new Utf8(), length: values.length, nullCount: 0, valueOffsets: offsets, data: bytes });
}

export function recordsToTable(records: VectorRecord[], schema: Schema): Table {
  const n = records.length;
  const vecType = schema.fields[1]!.type as FixedSizeList<Float32>;
  const dim = vecType.listSize;
  const flat = new Float32Array(n * dim);
  records.forEach((r, i) => flat.set(r.vector, i * dim));
  const f64 = (pick: (m: ImageMeta) => number) => makeData({ type: new Float64(), length: n, nullCount: 0, data: Float64Array.from(records, (r) => pick(r.meta)) });
  const i32 = (pick: (m: ImageMeta) => number) => makeData({ type: new Int32(), length: n, nullCount: 0, data: Int32Array.from(records, (r) => pick(r.meta)) });
  const children = [
    utf8(records.map((r) => r.id)),
    makeData({ type: vecType, length: n, nullCount: 0, child: makeData({ type: new Float32(), length: n * dim, nullCount: 0, data: flat }) }),
    utf8(records.map((r) => r.meta.path)),
    f64((m) => m.size),
    f64((m) => m.mtime),
    i32((m) => m.width),
    i32((m) => m.height),
    utf8(records.map((r) => r.meta.hash)),
  ];
  const struct = makeData({ type: new Struct(schema.fields), length: n, nullCount: 0, children });
  return new Table([new RecordBatch(schema, struct)]);
}

/** Read metadata columns of result row `i` (the column set LanceStore selects). */
export function metaAt(cols: Record<keyof ImageMeta, Vector>, i: number): ImageMeta {
  return {
    path: cols.path.get(i) as string,
    size: Number(cols.size.get(i)),
    mtime: Number(cols.mtime.get(i)),
    width: Number(cols.width.get(i)),
    height: Number(cols.height.get(i)),
    hash: cols.hash.get(i) as string,
  };
}

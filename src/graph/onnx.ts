// Serialize our Graph IR to an ONNX ModelProto (field numbers from onnx/onnx.proto).
import { closeSync, openSync } from 'node:fs';
import { ProtoWriter } from '../io/protobuf.js';
import { writeAll } from '../io/write-all.js';
import type { Attr, Graph, Initializer, ValueInfo, ElemType } from './graph.js';

const ONNX_TYPE: Record<ElemType, number> = {
  float32: 1, uint8: 2, int8: 3, int32: 6, int64: 7, bool: 9, float16: 10,
};

export interface OpsetImport { domain: string; version: number }

export const DEFAULT_OPSETS: OpsetImport[] = [
  { domain: '', version: 17 },
  { domain: 'com.microsoft', version: 1 },
];

function tensorProto(t: Initializer): ProtoWriter {
  const w = new ProtoWriter();
  w.packedInts(1, t.dims);
  w.int(2, ONNX_TYPE[t.type]);
  w.string(8, t.name);
  w.bytes(9, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  return w;
}

function attrProto(name: string, a: Attr): ProtoWriter {
  const w = new ProtoWriter();
  w.string(1, name);
  if ('f' in a) w.float(2, a.f).int(20, 1);
  else if ('i' in a) w.int(3, a.i).int(20, 2);
  else if ('s' in a) w.string(4, a.s).int(20, 3);
  else if ('t' in a) w.message(5, tensorProto(a.t)).int(20, 4);
  else if ('floats' in a) {
    for (const f of a.floats) w.float(7, f);
    w.int(20, 6);
  } else if ('ints' in a) {
    w.packedInts(8, a.ints);
    w.int(20, 7);
  }
  return w;
}

function valueInfo(v: ValueInfo): ProtoWriter {
  const tensorType = new ProtoWriter().int(1, ONNX_TYPE[v.type]);
  if (v.dims) {
    const shape = new ProtoWriter();
    for (const d of v.dims) {
      const dim = new ProtoWriter();
      if (typeof d === 'number') dim.int(1, d);
      else dim.string(2, d);
      shape.message(1, dim);
    }
    tensorType.message(2, shape);
  }
  const type = new ProtoWriter().message(1, tensorType);
  return new ProtoWriter().string(1, v.name).message(2, type);
}

/** protobuf refuses messages of 2 GiB or more, so ORT cannot read a single-file model that large. */
export const PROTOBUF_LIMIT = 2 ** 31 - 1;

/** The ModelProto fields for `metadata_props` (14): always written last, so they are also the file's last bytes. */
function metadataProps(model: ProtoWriter, metadata: Record<string, string>): ProtoWriter {
  for (const [k, v] of Object.entries(metadata)) model.message(14, new ProtoWriter().string(1, k).string(2, v));
  return model;
}

/** The bytes a model written with `metadata` ends with: a cheap check that a file on disk is complete. */
export function onnxTrailer(metadata: Record<string, string>): Uint8Array {
  return metadataProps(new ProtoWriter(), metadata).finish();
}

function modelProto(g: Graph, opsets: OpsetImport[], metadata?: Record<string, string>): ProtoWriter {
  const graph = new ProtoWriter();
  for (const n of g.nodes) {
    const node = new ProtoWriter();
    for (const i of n.inputs) node.string(1, i);
    for (const o of n.outputs) node.string(2, o);
    node.string(3, n.name);
    node.string(4, n.op);
    for (const [k, a] of Object.entries(n.attrs)) node.message(5, attrProto(k, a));
    if (n.domain) node.string(7, n.domain);
    graph.message(1, node);
  }
  graph.string(2, g.name);
  for (const t of g.initializers.values()) graph.message(5, tensorProto(t));
  for (const v of g.inputs) graph.message(11, valueInfo(v));
  for (const v of g.outputs) graph.message(12, valueInfo(v));

  const model = new ProtoWriter();
  model.int(1, 8); // IR version 8 pairs with opset 17
  model.string(2, 'clip-ts');
  model.message(7, graph);
  for (const o of opsets) model.message(8, new ProtoWriter().string(1, o.domain).int(2, o.version));
  return metadata ? metadataProps(model, metadata) : model;
}

export function toOnnxModel(g: Graph, opsets: OpsetImport[] = DEFAULT_OPSETS, metadata?: Record<string, string>): Uint8Array {
  return modelProto(g, opsets, metadata).finish();
}

/**
 * Write the model to `path` chunk by chunk, straight from the graph's weight arrays: no model-sized buffer
 * is assembled in memory. Returns false (and writes nothing) when the model is over the protobuf limit.
 */
export function writeOnnxModel(g: Graph, path: string, metadata?: Record<string, string>, opsets: OpsetImport[] = DEFAULT_OPSETS): boolean {
  const model = modelProto(g, opsets, metadata);
  if (model.length > PROTOBUF_LIMIT) return false;
  const fd = openSync(path, 'w');
  try {
    // Thousands of tiny chunks (tags, lengths, names) are gathered into one buffer; weights go out as they are.
    const buf = Buffer.allocUnsafe(1 << 20);
    let used = 0;
    const flush = () => {
      writeAll(fd, buf.subarray(0, used));
      used = 0;
    };
    for (const c of model.chunks()) {
      if (c.length > buf.length / 4) {
        flush();
        writeAll(fd, c);
      } else {
        if (used + c.length > buf.length) flush();
        buf.set(c, used);
        used += c.length;
      }
    }
    flush();
  } finally {
    closeSync(fd);
  }
  return true;
}

// The project's own graph IR: a list of ONNX nodes plus initializers. Towers are written against it,
// it serializes to an ONNX ModelProto for ONNX Runtime, and autodiff walks the same node list.

export type ElemType = 'float32' | 'float16' | 'int64' | 'int32' | 'int8' | 'uint8' | 'bool';
export type Dim = number | string;
export type TensorData = Float32Array | BigInt64Array | Int32Array | Int8Array | Uint8Array | Uint16Array;

export type Attr =
  | { i: number }
  | { f: number }
  | { s: string }
  | { ints: number[] }
  | { floats: number[] }
  | { t: Initializer };

export const attr = {
  i: (v: number): Attr => ({ i: v }),
  f: (v: number): Attr => ({ f: v }),
  s: (v: string): Attr => ({ s: v }),
  ints: (v: number[]): Attr => ({ ints: v }),
  floats: (v: number[]): Attr => ({ floats: v }),
};

export interface NodeDef {
  op: string;
  domain: string;
  name: string;
  inputs: string[];
  outputs: string[];
  attrs: Record<string, Attr>;
}

export interface Initializer {
  name: string;
  type: ElemType;
  dims: number[];
  data: TensorData;
}

export interface ValueInfo {
  name: string;
  type: ElemType;
  /** Undefined leaves the shape to ORT's inference. */
  dims?: Dim[];
}

export class Graph {
  readonly nodes: NodeDef[] = [];
  readonly initializers = new Map<string, Initializer>();
  /**
   * Initializers that are checkpoint tensors, under their checkpoint names and in their stored layout:
   * what training differentiates and saves. Other initializers are constants (shapes, masks, folds).
   */
  readonly weights = new Set<string>();
  readonly inputs: ValueInfo[] = [];
  readonly outputs: ValueInfo[] = [];
  private counter = 0;

  constructor(readonly name = 'graph') {}

  fresh(prefix: string): string {
    return `${prefix}__${this.counter++}`;
  }

  input(name: string, type: ElemType, dims: Dim[]): string {
    this.inputs.push({ name, type, dims });
    return name;
  }

  output(value: string, name: string, type: ElemType = 'float32', dims?: Dim[]): string {
    if (value !== name) this.node('Identity', [value], {}, { outputs: [name] });
    this.outputs.push({ name, type, dims });
    return name;
  }

  init(name: string, data: TensorData, dims: number[], type?: ElemType): string {
    if (this.initializers.has(name)) throw new Error(`graph ${this.name}: initializer "${name}" defined twice`);
    const t = type ?? inferType(data);
    this.initializers.set(name, { name, type: t, dims, data });
    return name;
  }

  /** A small constant, auto-named (shapes, axes, scalars). */
  constF(values: number[] | Float32Array, dims?: number[]): string {
    const data = values instanceof Float32Array ? values : Float32Array.from(values);
    return this.init(this.fresh('const_f'), data, dims ?? [data.length]);
  }

  constI64(values: number[], dims?: number[]): string {
    return this.init(this.fresh('const_i'), BigInt64Array.from(values.map(BigInt)), dims ?? [values.length], 'int64');
  }

  node(op: string, inputs: string[], attrs: Record<string, Attr> = {}, opts: { outputs?: number | string[]; domain?: string; name?: string } = {}): string[] {
    const name = opts.name ?? this.fresh(op);
    const outs = Array.isArray(opts.outputs)
      ? opts.outputs
      : Array.from({ length: opts.outputs ?? 1 }, (_, k) => `${name}_out${k}`);
    this.nodes.push({ op, domain: opts.domain ?? '', name, inputs, outputs: outs, attrs });
    return outs;
  }

  /** Single-output node. */
  op(op: string, inputs: string[], attrs: Record<string, Attr> = {}, domain?: string): string {
    return this.node(op, inputs, attrs, { domain })[0]!;
  }
}

function inferType(data: TensorData): ElemType {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof BigInt64Array) return 'int64';
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof Int8Array) return 'int8';
  if (data instanceof Uint16Array) return 'float16';
  return 'uint8';
}

// Towers read weights by *canonical* names (one naming for every checkpoint family). A family is a
// resolver from canonical names to its own keys; the tower code never sees checkpoint key names.
import { firstNonFinite, shapeOf, toFloat32, type TensorSource } from '../io/tensor.js';

export interface Weight {
  data: Float32Array;
  shape: number[];
}

export type Resolver = (canonical: string) => Weight | undefined;

/**
 * Where a canonical weight sits in a checkpoint: one key, or several stacked along dim 0 (HF's q/k/v),
 * optionally transposed (OpenAI's [in, out] projections). The one statement of a family's layout: towers
 * turn it into graph nodes (transformer.ts `param`), which training differentiates and inference folds.
 */
export interface KeyPlan {
  keys: string[];
  transpose?: boolean;
}
export type KeyMap = (canonical: string) => KeyPlan | undefined;

/** One checkpoint tensor as stored (its own key, shape and layout). */
export interface StoredTensor {
  key: string;
  shape: number[];
  load(): Weight;
}

/** A weight's shape as the checkpoint declares it, before a byte is read. */
export interface WeightRef {
  keys: string[];
  /** The canonical shape (after packing and transposing). */
  shape: number[];
  /** The stored tensors behind it, stacked along dim 0 and then transposed when `transpose`. */
  parts: StoredTensor[];
  transpose: boolean;
}

/** Shape without reading the tensor: both file readers expose `info`; in-memory sources just `get`. */
export function declaredShape(src: TensorSource, key: string): number[] {
  const s = shapeOf(src, key);
  if (!s) throw new Error(`${src.origin}: no tensor "${key}"`);
  return s;
}

const fmt = (shape: readonly number[]): string => `[${shape.join(', ')}]`;

export class TowerWeights {
  private readonly refOf: (name: string) => WeightRef | undefined;
  private readonly keysOf: (name: string) => string[] | undefined;

  /** A function: weights already in memory (tests, a trainer's parameters); else refs into a file (fromSource). */
  constructor(resolve: Resolver | { ref: (name: string) => WeightRef | undefined; keys: (name: string) => string[] | undefined }, readonly origin: string) {
    if (typeof resolve === 'function') {
      this.refOf = (name) => {
        const w = resolve(name);
        return w && { keys: [name], shape: w.shape, parts: [{ key: name, shape: w.shape, load: () => w }], transpose: false };
      };
      this.keysOf = () => undefined;
    } else {
      this.refOf = resolve.ref;
      this.keysOf = resolve.keys;
    }
  }

  /**
   * A checkpoint's tensors by canonical name. Shapes come from the file's header and are checked (see
   * shapes.ts) before any tensor is read; the data is read, converted and checked finite only by `get`.
   */
  static fromSource(src: TensorSource, map: KeyMap): TowerWeights {
    const ref = (name: string): WeightRef | undefined => {
      const plan = map(name);
      if (!plan || !plan.keys.every((k) => src.has(k))) return undefined;
      const parts = plan.keys.map((k) => ({ key: k, shape: declaredShape(src, k) }));
      let shape = parts[0]!.shape;
      if (parts.length > 1) {
        const rest = fmt(shape.slice(1));
        if (parts.some((p) => p.shape.length === 0 || fmt(p.shape.slice(1)) !== rest)) {
          throw new Error(`${src.origin}: tensors ${parts.map((p) => `"${p.key}" ${fmt(p.shape)}`).join(', ')} should differ only in their first dimension`);
        }
        shape = [parts.reduce((n, p) => n + p.shape[0]!, 0), ...shape.slice(1)];
      }
      if (plan.transpose) {
        if (shape.length !== 2) throw new Error(`${src.origin}: tensor "${plan.keys[0]}" has shape ${fmt(shape)}, expected a matrix`);
        shape = [shape[1]!, shape[0]!];
      }
      const stored = parts.map((p): StoredTensor => ({
        key: p.key, shape: p.shape,
        load: () => {
          const t = src.get(p.key);
          return { data: toFloat32(t), shape: t.shape };
        },
      }));
      return { keys: plan.keys, shape, parts: stored, transpose: !!plan.transpose };
    };
    // For messages about a weight that is not there: the keys that are missing.
    const absent = (name: string) => map(name)?.keys.filter((k) => !src.has(k));
    return new TowerWeights({ ref, keys: absent }, src.origin);
  }

  /**
   * A weight stored as one tensor in its canonical layout (logit_scale, ...), checked finite: a NaN or
   * infinite weight would give NaN embeddings for every input. Packed or transposed weights are read
   * through the graph (models/transformer.ts `param`), where their layout is nodes.
   */
  get(name: string): Weight {
    const ref = this.ref(name);
    if (ref.parts.length !== 1 || ref.transpose) throw new Error(`${this.origin}: "${name}" is stored as ${ref.keys.join(' + ')}${ref.transpose ? ' (transposed)' : ''}; read it through the graph`);
    return this.loadStored(ref.parts[0]!);
  }

  /** Where a canonical weight sits in the checkpoint; throws naming the missing key(s). */
  ref(name: string): WeightRef {
    const ref = this.refOf(name);
    if (!ref) throw new Error(`${this.origin}: ${this.missing(name)}`);
    return ref;
  }

  /** One stored tensor behind a canonical weight, as the checkpoint holds it (checked finite). */
  loadStored(part: StoredTensor): Weight {
    return this.finite(part.load(), [part.key]);
  }

  private finite(w: Weight, keys: string[]): Weight {
    const i = firstNonFinite(w.data);
    if (i >= 0) throw new Error(`${this.origin}: tensor ${keys.map((k) => `"${k}"`).join(', ')} holds a non-finite value (${w.data[i]} at index ${i})`);
    return w;
  }

  has(name: string): boolean {
    return this.refOf(name) !== undefined;
  }

  /** The declared shape, without reading the tensor; undefined when absent. */
  shape(name: string): number[] | undefined {
    return this.refOf(name)?.shape;
  }

  /** The checkpoint key(s) behind a canonical name (when absent: the missing ones), for messages. */
  keys(name: string): string[] {
    return this.refOf(name)?.keys ?? this.keysOf(name) ?? [name];
  }

  missing(name: string): string {
    const keys = this.keysOf(name);
    return keys ? `missing tensor ${keys.map((k) => `"${k}"`).join(', ')} (${name})` : `missing weight for "${name}"`;
  }
}

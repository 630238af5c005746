// Reading checkpoint config values: nothing in a config file is trusted. Each value is checked for its
// type and range where it is read, so a bad file is refused with its path and the field's name before any
// graph is built or any array is sized from it.
import type { Activation } from '../graph/ops.js';

type Json = Record<string, unknown>;

/**
 * Upper bounds on tower dimensions. Every released CLIP, Chinese-CLIP, Taiyi and open_clip model is far
 * inside them; they exist so a config cannot size an absurd allocation (the causal mask is positions²
 * floats, the position table positions × width) before the weights are compared with it.
 */
export const CONFIG_LIMITS = {
  layers: 512,
  width: 65536,
  mlpWidth: 262144,
  vocab: 4_194_304,
  positions: 8192,
  typeVocab: 1024,
  imageSize: 4096,
} as const;

export const SUPPORTED_ACTS: readonly Activation[] = ['gelu', 'gelu_new', 'quick_gelu', 'relu'];

const show = (v: unknown): string => {
  if (typeof v === 'number' && !Number.isFinite(v)) return String(v);
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 60 ? `${s.slice(0, 57)}...` : s;
};

/** The fields of one JSON object in a config file; `path` is where it sits (`vision_config.`). */
export class Fields {
  constructor(readonly obj: Json, readonly origin: string, readonly path = '') {}

  /** Fields of a nested object, which must be there. */
  static of(json: unknown, origin: string): Fields {
    if (!json || typeof json !== 'object' || Array.isArray(json)) throw new Error(`${origin}: expected a JSON object, got ${show(json)}`);
    return new Fields(json as Json, origin);
  }

  name(key: string): string {
    return `${this.path}${key}`;
  }

  fail(key: string, msg: string): never {
    throw new Error(`${this.origin}: ${this.name(key)} ${msg}`);
  }

  has(key: string): boolean {
    return this.obj[key] !== undefined && this.obj[key] !== null;
  }

  sub(key: string): Fields {
    const v = this.obj[key];
    if (!v || typeof v !== 'object' || Array.isArray(v)) this.fail(key, `must be an object, got ${show(v)}`);
    return new Fields(v as Json, this.origin, `${this.name(key)}.`);
  }

  /** An integer in [min, max]; absent (or null) gives `dflt`. */
  int(key: string, dflt: number | undefined, min: number, max: number): number {
    const v = this.obj[key] ?? dflt;
    if (v === undefined) this.fail(key, 'is missing');
    return checkInt(v, min, max, (msg) => this.fail(key, msg));
  }

  /** A finite number in the range; absent (or null) gives `dflt`. */
  num(key: string, dflt: number | undefined, range: { gt?: number; min?: number; max?: number } = {}): number {
    const v = this.obj[key] ?? dflt;
    if (v === undefined) this.fail(key, 'is missing');
    return checkNum(v, range, (msg) => this.fail(key, msg));
  }

  /** A list of minLength..maxLength integers, each in [min, max]; required. */
  intList(key: string, minLength: number, maxLength: number, min: number, max: number): number[] {
    const v = this.obj[key];
    if (!Array.isArray(v) || v.length < minLength || v.length > maxLength) {
      this.fail(key, `must be a list of ${minLength} to ${maxLength} integers, got ${show(v)}`);
    }
    return v.map((x, i) => checkInt(x, min, max, (msg) => this.fail(`${key}[${i}]`, msg)));
  }

  act(key: string, dflt: Activation): Activation {
    const v = this.obj[key] ?? dflt;
    if (!SUPPORTED_ACTS.includes(v as Activation)) this.fail(key, `"${String(v)}" is not a supported activation (${SUPPORTED_ACTS.join(', ')})`);
    return v as Activation;
  }
}

export function checkInt(v: unknown, min: number, max: number, fail: (msg: string) => never): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) fail(`must be an integer >= ${min}, got ${show(v)}`);
  if (v > max) fail(`must be an integer <= ${max}, got ${show(v)}`);
  return v;
}

export function checkNum(v: unknown, range: { gt?: number; min?: number; max?: number }, fail: (msg: string) => never): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) fail(`must be a finite number, got ${show(v)}`);
  if (range.gt !== undefined && !(v > range.gt)) fail(`must be > ${range.gt}, got ${show(v)}`);
  if (range.min !== undefined && v < range.min) fail(`must be >= ${range.min}, got ${show(v)}`);
  if (range.max !== undefined && v > range.max) fail(`must be <= ${range.max}, got ${show(v)}`);
  return v;
}

/** `width` must split evenly into `heads` attention heads. */
export function checkHeads(f: Fields, widthKey: string, width: number, headsKey: string, heads: number): void {
  if (width % heads !== 0) {
    throw new Error(`${f.origin}: ${f.name(widthKey)} ${width} is not divisible by ${f.name(headsKey)} ${heads}`);
  }
}


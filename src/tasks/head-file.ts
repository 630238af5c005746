// A fitted linear head on disk (`clip eval linear-probe --save-head`, `clip classify --head`): JSON with
// the classes, weights and bias, the features it expects and the model they come from. Numbers are
// written as JSON doubles, which read back bit for bit, so a saved head predicts exactly what the
// fitted one did. A head file is input like any other: its shape and every number are checked.
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import type { LinearHead } from './linear-probe.js';

export const HEAD_FORMAT = 'clip-linear-head';
const MAX_HEAD_BYTES = 512 * 1024 * 1024;
const MAX_CLASSES = 100_000;
const MAX_DIM = 65_536;

/** Which model made the features: a head is only valid on that model's embeddings. */
export interface HeadModel {
  /** As given on the command line (a path, hub id or alias). */
  model: string;
  /** The checkpoint path it resolved to. */
  path: string;
  family: string;
  dtype?: string;
}

export interface HeadFile {
  format: typeof HEAD_FORMAT;
  version: 1;
  /** The head takes L2-normalized image embeddings (it normalizes its input itself). */
  features: 'l2-normalized image embedding';
  model: HeadModel;
  classes: string[];
  dim: number;
  weights: number[][];
  bias: number[];
  /** How it was fitted (C, blend weight, shots, held-out accuracy): for people, not read back. */
  fit?: Record<string, unknown>;
}

export function writeHead(path: string, head: LinearHead, model: HeadModel, fit?: Record<string, unknown>): void {
  const file: HeadFile = {
    format: HEAD_FORMAT, version: 1, features: 'l2-normalized image embedding', model,
    classes: head.classes, dim: head.dim, weights: head.weights.map((w) => Array.from(w)), bias: Array.from(head.bias),
    ...(fit ? { fit } : {}),
  };
  writeFileSync(path, JSON.stringify(file) + '\n');
}

export function readHead(path: string): { head: LinearHead; model: HeadModel; fit?: Record<string, unknown> } {
  let size: number;
  try {
    size = statSync(path).size;
  } catch (e) {
    throw new Error(`head ${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  if (size > MAX_HEAD_BYTES) throw new Error(`head ${path}: ${size} bytes is more than a head can need (limit ${MAX_HEAD_BYTES})`);
  let j: any;
  try {
    j = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`head ${path}: not valid JSON (${(e as Error).message})`);
  }
  const bad = (field: string, what: string): never => { throw new Error(`head ${path}: ${field} ${what}`); };
  if (j?.format !== HEAD_FORMAT) bad('format', `is ${JSON.stringify(j?.format)}, not "${HEAD_FORMAT}" (is this a head saved by clip eval linear-probe?)`);
  if (j.version !== 1) bad('version', `${JSON.stringify(j.version)} is not supported (this version reads 1)`);
  const { classes, dim, weights, bias, model } = j;
  if (!Array.isArray(classes) || classes.length < 2 || classes.length > MAX_CLASSES) bad('classes', `must be a list of 2 to ${MAX_CLASSES} names`);
  classes.forEach((c: unknown, i: number) => { if (typeof c !== 'string' || !c.trim()) bad(`classes[${i}]`, 'is not a non-empty string'); });
  if (new Set(classes).size !== classes.length) bad('classes', 'has duplicates');
  if (!Number.isInteger(dim) || dim < 1 || dim > MAX_DIM) bad('dim', `must be an integer in 1..${MAX_DIM}`);
  const vector = (v: unknown, n: number, field: string): Float64Array => {
    if (!Array.isArray(v) || v.length !== n) return bad(field, `must be a list of ${n} numbers`);
    const out = new Float64Array(n);
    v.forEach((x: unknown, i: number) => {
      if (typeof x !== 'number' || !Number.isFinite(x)) bad(`${field}[${i}]`, 'is not a finite number');
      out[i] = x as number;
    });
    return out;
  };
  if (!Array.isArray(weights) || weights.length !== classes.length) bad('weights', `must have one row per class (${classes.length})`);
  const w = (weights as unknown[]).map((row, c) => vector(row, dim, `weights[${c}]`));
  const b = vector(bias, classes.length, 'bias');
  if (!model || typeof model.model !== 'string' || typeof model.path !== 'string') bad('model', 'must name the model ({"model", "path", "family"})');
  return { head: { kind: 'linear', classes, dim, weights: w, bias: b }, model, ...(j.fit && typeof j.fit === 'object' ? { fit: j.fit } : {}) };
}

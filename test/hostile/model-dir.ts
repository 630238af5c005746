// Builders for hostile checkpoint directories: a copy of the tiny hf-clip fixture with one file replaced.
import { copyFileSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixture } from '../fixtures.js';

export const HF_FILES = ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'preprocessor_config.json', 'model.safetensors'] as const;
export type HfFile = (typeof HF_FILES)[number];

/** A new temp dir holding hf-clip-tiny: small files copied, the weights linked, `replace` written instead. */
export function hfTinyDir(replace: Partial<Record<HfFile, string | Uint8Array>> = {}, base = 'hf-clip-tiny'): string {
  const d = mkdtempSync(join(tmpdir(), 'clip-hostile-'));
  for (const f of HF_FILES) {
    const content = replace[f];
    if (content !== undefined) writeFileSync(join(d, f), content);
    else if (f === 'model.safetensors') symlinkSync(fixture(base, f), join(d, f));
    else copyFileSync(fixture(base, f), join(d, f));
  }
  return d;
}

export const fixtureJson = (name: string, file: string): any => JSON.parse(readFileSync(fixture(name, file), 'utf8'));

/** Sets `path` (dotted) in a deep copy of `obj`. */
export function withField(obj: unknown, path: string, value: unknown): any {
  const copy = JSON.parse(JSON.stringify(obj));
  const keys = path.split('.');
  let o = copy;
  for (const k of keys.slice(0, -1)) o = o[k];
  o[keys.at(-1)!] = value;
  return copy;
}

/** The parts of a safetensors file: its header object and the data bytes after it. */
export function splitSafetensors(bytes: Uint8Array): { header: Record<string, any>; data: Uint8Array } {
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(view.readBigUInt64LE(0));
  return { header: JSON.parse(view.subarray(8, 8 + n).toString('utf8')), data: bytes.subarray(8 + n) };
}

/** A safetensors file from a header (any JSON value, hostile or not) and data bytes. */
export function rawSafetensors(header: unknown, data: Uint8Array = new Uint8Array(0), declaredLength?: bigint): Uint8Array {
  const h = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header), 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(declaredLength ?? BigInt(h.length));
  return Buffer.concat([len, h, data]);
}

/** Seeded generator, so a failing fuzz case can be replayed from its seed. */
export { rng } from '../../src/search/synthetic.js';

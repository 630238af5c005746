// Bench inputs: locate ../shared, extract the ViT-B/32 checkpoint once into a cache outside the repo,
// and build the image / caption lists every worker uses (so both sides see identical inputs).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** dist/bench/prepare.js -> repo root (two levels up), as test/fixtures.ts does for its own files. */
export const REPO_ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
export const SHARED = resolve(REPO_ROOT, '..', 'shared');
const ARCHIVE = join(SHARED, 'bench', 'vitb32-tiled.tar.xz');
const MODEL_NAME = 'vitb32-tiled';

/** Files both libraries read; if any is missing the extraction is treated as broken. */
const REQUIRED = [
  'config.json', 'model.safetensors', 'tokenizer.json', 'preprocessor_config.json',
  'onnx/vision_model.onnx', 'onnx/text_model.onnx', 'onnx/vision_model_quantized.onnx', 'onnx/text_model_quantized.onnx',
];

export function cacheRoot(): string {
  const env = process.env;
  if (env.CLIP_CACHE) return env.CLIP_CACHE;
  if (env.XDG_CACHE_HOME) return join(env.XDG_CACHE_HOME, 'clip-ts');
  return join(homedir(), '.cache', 'clip-ts');
}

export interface BenchPaths {
  /** Parent of the model dir: transformers.js's env.localModelPath. */
  benchDir: string;
  modelName: string;
  modelDir: string;
}

export function sharedAvailable(): boolean {
  return existsSync(ARCHIVE);
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Extract the archive unless the cache already has it. Extraction goes to `.extract-<pid>` and is renamed
 * into place only when tar succeeded, so a killed run leaves a temp dir (cleaned next time), never a
 * half-filled model dir.
 */
export function ensureCheckpoint(log: (msg: string) => void): BenchPaths {
  const benchDir = join(cacheRoot(), 'bench');
  const modelDir = join(benchDir, MODEL_NAME);
  const paths = { benchDir, modelName: MODEL_NAME, modelDir };
  if (existsSync(modelDir)) {
    const missing = REQUIRED.filter((f) => !existsSync(join(modelDir, f)));
    if (missing.length) throw new Error(`${modelDir} is incomplete (missing ${missing.join(', ')}); delete it and rerun`);
    return paths;
  }
  mkdirSync(benchDir, { recursive: true });
  // Leftovers of interrupted extractions (their process is gone).
  for (const name of readdirSync(benchDir)) {
    const m = /^\.extract-(\d+)$/.exec(name);
    if (m && !pidAlive(Number(m[1]))) rmSync(join(benchDir, name), { recursive: true, force: true });
  }
  const tmp = join(benchDir, `.extract-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  log(`extracting ${ARCHIVE} -> ${modelDir} (about 1.3 GB, once)`);
  const t0 = performance.now();
  try {
    execFileSync('tar', ['-xJf', ARCHIVE, '-C', tmp], { stdio: ['ignore', 'ignore', 'inherit'] });
    const extracted = join(tmp, MODEL_NAME);
    const missing = REQUIRED.filter((f) => !existsSync(join(extracted, f)));
    if (missing.length) throw new Error(`archive lacks ${missing.join(', ')}`);
    renameSync(extracted, modelDir);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  log(`extracted in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return paths;
}

export interface BenchInputs {
  images: string[];
  captions: string[];
}

export const IMAGES_PER_TIMING = 128;
export const TEXTS_PER_TIMING = 256;
/** "Short caption" cut-off in CLIP tokens (specials included): keeps prompts, drops the stress-test texts. */
const MAX_CAPTION_TOKENS = 32;

/** Repeat `items` cyclically up to n entries. */
function repeatTo<T>(items: readonly T[], n: number): T[] {
  return Array.from({ length: n }, (_, i) => items[i % items.length]!);
}

export function benchInputs(): BenchInputs {
  const imgDir = join(SHARED, 'fixtures', 'common', 'images');
  const files = readdirSync(imgDir).filter((f) => statSync(join(imgDir, f)).isFile()).sort().map((f) => join(imgDir, f));
  const golden = JSON.parse(readFileSync(join(SHARED, 'fixtures', 'hf-clip-tiny', 'golden.json'), 'utf8')) as { captions: string[] };
  const tokens = JSON.parse(readFileSync(join(SHARED, 'fixtures', 'common', 'tokens-clip.json'), 'utf8')) as Array<{ text: string; hf_input_ids: number[] }>;
  // golden's last caption is a 500-char truncation test, not a caption.
  const short = [
    ...golden.captions.filter((c) => c.length <= 200),
    ...tokens.filter((t) => t.hf_input_ids.length <= MAX_CAPTION_TOKENS).map((t) => t.text),
  ];
  return { images: repeatTo(files, IMAGES_PER_TIMING), captions: repeatTo(short, TEXTS_PER_TIMING) };
}

/** The fixture photos the 12 MP files are made from (drawings, strips and thumbnails left out). */
const PHOTO_SOURCES = ['astronaut.png', 'camera.png', 'chelsea.png', 'chelsea-q90.jpg', 'china.jpg', 'coffee.png', 'flower.jpg', 'horse.png', 'rocket.png'];
export const BIG_WIDTH = 4000;
export const BIG_HEIGHT = 3000;
/** 12 MP files per timed run (one batch). */
export const BIG_PER_TIMING = 32;

/**
 * Phone-sized photos: the fixture photos upscaled (cover-cropped) to 4000x3000 and saved as quality-90
 * JPEGs in the bench cache, made at run time (once) rather than committed. Written to a temp name and
 * renamed, so a killed run never leaves a partial file behind.
 */
export async function bigPhotos(log: (msg: string) => void): Promise<{ distinct: string[]; images: string[] }> {
  const dir = join(cacheRoot(), 'bench', `photos-${BIG_WIDTH}x${BIG_HEIGHT}-q90`);
  mkdirSync(dir, { recursive: true });
  const { default: sharp } = await import('sharp');
  const distinct: string[] = [];
  for (const name of PHOTO_SOURCES) {
    const out = join(dir, `${name.replace(/\.\w+$/, '')}.jpg`);
    if (!existsSync(out)) {
      log(`making ${out}`);
      const tmp = `${out}.${process.pid}.tmp`;
      await sharp(join(SHARED, 'fixtures', 'common', 'images', name))
        .removeAlpha().resize(BIG_WIDTH, BIG_HEIGHT, { fit: 'cover' }).jpeg({ quality: 90 }).toFile(tmp);
      renameSync(tmp, out);
    }
    distinct.push(out);
  }
  return { distinct, images: repeatTo(distinct, BIG_PER_TIMING) };
}

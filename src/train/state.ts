// The output directory of `clip train`, and what --resume reads back. LAYOUT (also written to
// OUT/TRAINING_STATE.md, and shown by `clip train --help`) describes it.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PreprocessSpec } from '../models/checkpoint.js';

export const LAYOUT = `OUT/
  config.json, model.safetensors, tokenizer.json, tokenizer_config.json (+ vocab.json, merges.txt,
  vocab.txt, special_tokens_map.json when the tokenizer has them), preprocessor_config.json
                         the final model in its family's own layout (written when training completes):
                         HF CLIPModel or ChineseCLIPModel; a model fine-tuned from an OpenAI / open_clip
                         checkpoint is saved as open_clip_config.json + open_clip_model.safetensors
  train_log.jsonl        one JSON record per epoch (rewritten at every epoch end)
  train_steps.jsonl      one JSON record per step {step, epoch, loss, lr, samplesPerSec} (rewritten
                         at every checkpoint; a resumed run keeps the lines up to its checkpoint)
  TRAINING_STATE.md      this description
  checkpoint-<step>/     written every --save-every steps and at every epoch end; the newest --keep
                         stay. Each is a complete model directory (the files above: it loads with
                         ClipModel.load, and HF ones with transformers' from_pretrained), plus
    optimizer.safetensors  AdamW moments under the checkpoint's keys: exp_avg/<key>, exp_avg_sq/<key>; metadata
                         "step" = optimizer steps taken (Adam's bias-correction t)
    trainer_state.json   position (epoch, next batch, schedule step), running epoch loss, last loss,
                         the options that fix the run, data fingerprint, preprocessing and tokenizer
                         settings, learning-rate schedule, epoch history
  checkpoint-<step>.tmp/ a checkpoint being written; renamed into place once complete, so a kill at
                         any moment leaves the previous checkpoint intact (--resume ignores it)

--resume continues from the newest checkpoint-<step>/ exactly: parameters from its model.safetensors
(bit for bit: parameters are the checkpoint's tensors as stored), optimizer moments and step from
optimizer.safetensors, schedule position and data position from trainer_state.json. There is no
generator state to save: the data order of epoch e is a permutation drawn from xoshiro128** seeded
with (seed, 1000 + e), so (epoch, batch) is the whole random state. Bit-exact with the same --threads.
`;

export const STATE_FILE = 'trainer_state.json';
export const LAYOUT_FILE = 'TRAINING_STATE.md';
export const OPTIMIZER_FILE = 'optimizer.safetensors';
export const LOG_FILE = 'train_log.jsonl';
export const STEP_LOG_FILE = 'train_steps.jsonl';
export const STATE_FORMAT = 'clip-ts-train-state';

export interface RecallSummary {
  imageToText: Record<string, number | null>;
  textToImage: Record<string, number | null>;
  mean: number | null;
  images: number;
  texts: number;
  failedImages: number;
}

export interface EpochRecord {
  type: 'epoch';
  /** 1-based. */
  epoch: number;
  /** Schedule steps done at the end of this epoch. */
  step: number;
  /** Mean loss over the epoch's steps (each before its update). */
  trainLoss: number | null;
  /** Learning rate of the epoch's last step. */
  lr: number;
  samples: number;
  seconds: number;
  samplesPerSec: number;
  val?: RecallSummary;
  /** The checkpoint written at this epoch end (later removed unless --keep keeps it). */
  checkpoint: string;
}

export interface StepRecord {
  /** 1-based: schedule steps done after this one. */
  step: number;
  epoch: number;
  /** Loss before this step's update (null when the batch was skipped). */
  loss: number | null;
  lr: number;
  samplesPerSec: number;
}

/** The step log up to and including `upTo` (what a resumed run starts from); [] when absent. */
export function readStepLog(out: string, upTo = Infinity): StepRecord[] {
  const path = join(out, STEP_LOG_FILE);
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as StepRecord).filter((r) => r.step <= upTo);
}

export interface TrainState {
  format: typeof STATE_FORMAT;
  version: 1;
  /** Schedule steps done (batches consumed, including any skipped for lack of readable images). */
  step: number;
  /** Where the next batch comes from: 0-based epoch and batch within it. */
  epoch: number;
  batch: number;
  /** Loss of the last step taken (before its update). */
  lastLoss: number | null;
  /** The running epoch's loss sum and count, time and samples so far. */
  epochLoss: { sum: number; count: number; seconds: number; samples: number };
  /** Options that fix the trajectory (resume refuses different ones). */
  setup: Record<string, unknown>;
  /** ORT intra-op threads: results are bit-exact across a resume only with the same count. */
  threads: number | null;
  data: { samples: number; fingerprint: string; stepsPerEpoch: number; batchSize: number };
  schedule: { baseLr: number; warmup: number; total: number };
  rng: { algorithm: 'xoshiro128**'; seed: number; epochOrderStream: '1000 + epoch' };
  preprocess: PreprocessSpec;
  tokenizer: { mode: 'hf' | 'openai'; contextLength: number };
  history: EpochRecord[];
}

export interface CheckpointRef {
  step: number;
  dir: string;
}

export const checkpointDir = (out: string, step: number): string => join(out, `checkpoint-${step}`);

/** Complete checkpoints in OUT, oldest first. */
export function listCheckpoints(out: string): CheckpointRef[] {
  if (!existsSync(out)) return [];
  return readdirSync(out)
    .map((n) => /^checkpoint-(\d+)$/.exec(n))
    .filter((m): m is RegExpExecArray => !!m && existsSync(join(out, m[0], STATE_FILE)))
    .map((m) => ({ step: Number(m[1]), dir: join(out, m[0]) }))
    .sort((a, b) => a.step - b.step);
}

export function readState(dir: string): TrainState {
  const path = join(dir, STATE_FILE);
  const s = JSON.parse(readFileSync(path, 'utf8')) as TrainState;
  if (s.format !== STATE_FORMAT || s.version !== 1) throw new Error(`${path}: not a clip-ts training state (format ${JSON.stringify(s.format)}, version ${s.version})`);
  return s;
}

/**
 * Write a checkpoint as OUT/checkpoint-<step>.tmp, let `finish` add to it (validation, then the state
 * file), rename it into place, and drop all but the newest `keep` checkpoints.
 */
export async function commitCheckpoint(out: string, step: number, write: (dir: string) => void, finish: (dir: string) => Promise<TrainState>, keep: number): Promise<string> {
  const dir = checkpointDir(out, step);
  const tmp = `${dir}.tmp`;
  for (const n of readdirSync(out)) if (/^checkpoint-\d+\.tmp$/.test(n)) rmSync(join(out, n), { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  write(tmp);
  const state = await finish(tmp);
  writeFileSync(join(tmp, STATE_FILE), JSON.stringify(state, null, 1) + '\n');
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
  const all = listCheckpoints(out);
  for (const c of all.slice(0, Math.max(0, all.length - keep))) if (c.dir !== dir) rmSync(c.dir, { recursive: true, force: true });
  return dir;
}

/** Replace a small file atomically (write beside it, then rename). */
export function writeFileAtomic(path: string, content: string): void {
  writeFileSync(`${path}.tmp`, content);
  renameSync(`${path}.tmp`, path);
}

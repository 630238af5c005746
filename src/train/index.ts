// Training: CLIP contrastive loss, autodiff'd in the graph, AdamW in the graph, HF-layout checkpoints.
export type { AdamWConfig } from './adamw.js';
export { cosineLr, constantLr, type CosineSchedule } from './schedule.js';
export { saveHfCheckpoint } from './save.js';
export { ClipTrainer, eotPositions, type TrainBatch, type TrainerOptions, type StepResult } from './trainer.js';
export { trainClip, SETUP_DEFAULTS, type TrainSetup, type RunOptions, type TrainEvents, type TrainResult, type StepInfo } from './run.js';
export { readPairs, readCaptionFolder, detectFormat, type DataFormat } from './data.js';
export { listCheckpoints, readState, type TrainState, type EpochRecord } from './state.js';
export { randomClipWeights } from './init.js';
export { hfClipConfigJson } from './hf-config.js';
export type { TrainMemory } from './trainer.js';

// Training: CLIP contrastive loss, autodiff'd in the graph, AdamW in the graph, HF-layout checkpoints.
export { buildClipLossGraph, untieClassAndPosition, LOSS, LOGITS } from './clip-loss.js';
export { appendAdamW, adamwScalars, newAdamWState, saveAdamWState, loadAdamWState, type AdamWConfig, type AdamWState } from './adamw.js';
export { cosineLr, constantLr, type CosineSchedule } from './schedule.js';
export { toCheckpointLayout, fromCheckpointLayout, usesWeightDecay, isTransposedLinear, hfKeys, type KeyMapper, type NamedTensor } from './params.js';
export { saveHfCheckpoint } from './save.js';
export { ClipTrainer, eotPositions, type TrainBatch, type TrainerOptions, type StepResult } from './trainer.js';

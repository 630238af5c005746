// Public library API.
export { ClipModel, type LoadOptions, type EncodeOptions, type ImageResult } from './runtime/clip-model.js';
export { clearOnnxCache, onnxCacheDir, onnxCacheUsage, type OnnxCacheEvent, type OnnxCacheUsage } from './runtime/onnx-cache.js';
export { openCheckpoint, type Checkpoint } from './models/checkpoint.js';
export { similarityLogits, softmax, dot, l2normalize } from './tasks/similarity.js';
export { loadTokenizer } from './text/index.js';
export { decodeImage } from './image/decode.js';
export { SafetensorsFile, writeSafetensors } from './io/safetensors.js';
export { IO_LIMITS } from './io/limits.js';
export * from './hub/index.js';
export { buildClassifier, predict, classEmbeddings } from './tasks/zeroshot.js';
export { loadTemplates } from './tasks/templates.js';
export { evalZeroShot } from './tasks/eval-zeroshot.js';
export { evalRetrieval } from './tasks/eval-retrieval.js';
export { runEmbedJob } from './tasks/embed-job.js';
export { enumerateInputs } from './tasks/inputs.js';
export * from './search/index.js';
export * from './train/index.js';

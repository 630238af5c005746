// The library's main entry point, `clip-ts`: load a model, embed, classify, evaluate. Training, search and hub
// downloads have entry points of their own (`clip-ts/train`, `clip-ts/search`, `clip-ts/hub`), so importing this
// one loads neither LanceDB nor the trainer.
export { ClipModel, type LoadOptions, type EncodeOptions, type ImageResult } from './runtime/clip-model.js';
export type { ImageInput } from './runtime/preprocess.js';
export { clearOnnxCache, onnxCacheDir, onnxCacheUsage, type OnnxCacheEvent, type OnnxCacheUsage } from './runtime/onnx-cache.js';
export type { Checkpoint } from './models/checkpoint.js';
export { similarityLogits, softmax, dot, l2normalize } from './tasks/similarity.js';
export { loadTokenizer } from './models/tokenizer.js';
export type { TextTokenizer } from './text/types.js';
export { decodeImage } from './image/decode.js';
export { IO_LIMITS } from './io/limits.js';
export { classify, type ClassifyOptions, type Classification } from './tasks/classify.js';
export { buildClassifier, predict, classEmbeddings, type ZeroShotClassifier, type Prediction } from './tasks/zeroshot.js';
export { loadTemplates, TEMPLATE_SETS } from './tasks/templates.js';
export { evalZeroShot } from './tasks/eval-zeroshot.js';
export { fitLinearProbe, zeroShotHead, blendHeads, headLogits, type LinearHead, type LinearProbeOptions, type LinearProbeFit, type FeatureMatrix } from './tasks/linear-probe.js';
export { readHead, writeHead, type HeadModel } from './tasks/head-file.js';
export { evalLinearProbe } from './tasks/eval-linear-probe.js';
export { evalRetrieval } from './tasks/eval-retrieval.js';
export { runEmbedJob } from './tasks/embed-job.js';
export { enumerateInputs } from './tasks/inputs.js';

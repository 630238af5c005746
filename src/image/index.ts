// Image loading and CLIP preprocessing (PIL-exact and torch-exact resizes, OpenAI and Hugging Face pipelines).
export { type DecodedImage, type ImageMode, channelsOf, makeImage } from './types.js';
export { decodeImage } from './decode.js';
export { type ResampleFilter, PIL_RESAMPLE, resampleBands, resizeNearest } from './resample.js';
export { resampleBandsTorch, resizeNearestExactTorch } from './resample-torch.js';
export { premultiply, unpremultiply, toRGB } from './convert.js';
export { pilResize, shortestEdgeSize, torchResize } from './resize.js';
export { cropZeroPad, centerCropHFNumpy, centerCropHFTorch, centerCropTorchvision, roundHalfEven } from './crop.js';
export { type NormalizeArithmetic, type NormalizeOptions, normalizeInto } from './normalize.js';
export {
  type HFBackend, type ImageInput, type PreprocessPipeline, type PreprocessedImage, type RGBTriple,
  OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, openaiPipeline, pipelineFromPreprocessorConfig,
  preprocess, preprocessBatch, preprocessImage, preprocessToUint8,
} from './pipelines.js';

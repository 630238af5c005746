// Preprocessing configs -> the pipeline they describe, every value range-checked: OpenAI's torchvision transform
// and Hugging Face image processor files. Only reading and checking here (no pixels, no decoder), so the model
// loaders can refuse a bad file at load without loading the image stack (pipelines.ts runs the steps).
import { PIL_RESAMPLE, type ResampleFilter } from './resample.js';

export type RGBTriple = [number, number, number];

export const OPENAI_CLIP_MEAN: RGBTriple = [0.48145466, 0.4578275, 0.40821073];
export const OPENAI_CLIP_STD: RGBTriple = [0.26862954, 0.26130258, 0.27577711];

export type HFBackend = 'torchvision' | 'pil';

export interface PreprocessPipeline {
  kind: 'hf' | 'openai';
  /** hf only: which transformers backend to reproduce (default 'torchvision', transformers v5's default). */
  backend?: HFBackend;
  /** Resize target: a number is the shortest edge (aspect kept); {height, width} is exact. */
  size: number | { height: number; width: number };
  crop: { height: number; width: number };
  mean: RGBTriple;
  std: RGBTriple;
  resample: ResampleFilter;
  doResize: boolean;
  doCenterCrop: boolean;
  /** hf: multiply by rescaleFactor; openai: ToTensor's / 255 (rescaleFactor ignored). */
  doRescale: boolean;
  rescaleFactor: number;
  doNormalize: boolean;
  /**
   * hf only, our extension (`background_color` in preprocessor_config.json): composite images with an
   * alpha band over this colour instead of dropping alpha as PIL's convert('RGB') does. A model trained
   * on images flattened onto white (the bundled emoji model) should see transparent PNGs the same way;
   * transformers ignores the key, so checkpoints without it keep exact parity.
   */
  background?: RGBTriple;
}

/** Largest resize/crop edge a preprocessing config may ask for: CLIP towers take 224-448 px. */
export const MAX_PREPROCESS_EDGE = 4096;

const PP = 'preprocessor_config.json';

function edge(v: unknown, what: string, source: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > MAX_PREPROCESS_EDGE) {
    throw new Error(`${source}: ${what} must be an integer from 1 to ${MAX_PREPROCESS_EDGE}, got ${JSON.stringify(v)}`);
  }
  return v;
}

function num(v: unknown, what: string, source: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`${source}: ${what} must be a finite number, got ${JSON.stringify(v)}`);
  return v;
}

function positive(v: unknown, what: string, source: string): number {
  const n = num(v, what, source);
  if (!(n > 0)) throw new Error(`${source}: ${what} must be greater than 0, got ${n}`);
  return n;
}

function triple(v: unknown, what: string, dflt: RGBTriple, source: string, check = num): RGBTriple {
  if (v === undefined || v === null) return [...dflt];
  if (typeof v === 'number') v = [v, v, v];
  if (!Array.isArray(v) || v.length !== 3) throw new Error(`${source}: ${what} must be 3 numbers, got ${JSON.stringify(v)}`);
  return [check(v[0], `${what}[0]`, source), check(v[1], `${what}[1]`, source), check(v[2], `${what}[2]`, source)];
}

function byteValue(v: unknown, what: string, source: string): number {
  const n = num(v, what, source);
  if (n < 0 || n > 255) throw new Error(`${source}: ${what} must be from 0 to 255, got ${n}`);
  return n;
}

/** OpenAI CLIP's transform for input resolution `size` (224 for ViT-B/32, 336 for ViT-L/14@336px, ...). */
export function openaiPipeline(size = 224, mean: RGBTriple = OPENAI_CLIP_MEAN, std: RGBTriple = OPENAI_CLIP_STD, source = 'image config'): PreprocessPipeline {
  edge(size, 'image size', source);
  return {
    kind: 'openai', size, crop: { height: size, width: size },
    mean: triple(mean, 'mean', OPENAI_CLIP_MEAN, source), std: triple(std, 'std', OPENAI_CLIP_STD, source, positive),
    resample: 'bicubic', doResize: true, doCenterCrop: true, doRescale: true, rescaleFactor: 1 / 255, doNormalize: true,
  };
}

function hw(v: Record<string, unknown>, what: string, source: string): { height: number; width: number } {
  return { height: edge(v.height, `${what}.height`, source), width: edge(v.width, `${what}.width`, source) };
}

/** Backend transformers v5 would pick for a config: the class named in it, else torchvision. */
function backendOf(json: Record<string, unknown>): HFBackend {
  const cls = json.image_processor_type ?? json.feature_extractor_type;
  return typeof cls === 'string' && /Pil$/.test(cls) ? 'pil' : 'torchvision';
}

/**
 * Pipeline from a Hugging Face preprocessor_config.json (CLIPImageProcessor, and processors
 * with the same steps such as ChineseCLIPImageProcessor). Missing keys take CLIPImageProcessor's
 * defaults. `backend` overrides the transformers backend (e.g. 'pil' to match transformers v4).
 * Every value is range-checked (edges 1..MAX_PREPROCESS_EDGE, finite means, positive stds and
 * rescale factor, known resample codes); errors name `source` (the file) and the field.
 */
export function pipelineFromPreprocessorConfig(json: Record<string, unknown>, backend?: HFBackend, source = PP): PreprocessPipeline {
  if (!json || typeof json !== 'object' || Array.isArray(json)) throw new Error(`${source}: expected a JSON object`);
  const bool = (key: string, dflt: boolean): boolean => {
    const v = json[key];
    if (v === undefined || v === null) return dflt;
    if (typeof v !== 'boolean') throw new Error(`${source}: ${key} must be true/false, got ${JSON.stringify(v)}`);
    return v;
  };

  let size: PreprocessPipeline['size'] = 224;
  const s = json.size;
  if (typeof s === 'number') size = edge(s, 'size', source); // legacy CLIP configs: an int means the shortest edge
  else if (s && typeof s === 'object') {
    const o = s as Record<string, unknown>;
    if (o.shortest_edge !== undefined) size = edge(o.shortest_edge, 'size.shortest_edge', source);
    else if (o.height !== undefined && o.width !== undefined) size = hw(o, 'size', source);
    else throw new Error(`${source}: unsupported size ${JSON.stringify(s)} (need shortest_edge or height/width)`);
  } else if (s !== undefined && s !== null) throw new Error(`${source}: unsupported size ${JSON.stringify(s)}`);

  let crop = { height: 224, width: 224 };
  const c = json.crop_size;
  if (typeof c === 'number') crop = { height: edge(c, 'crop_size', source), width: c };
  else if (c && typeof c === 'object') crop = hw(c as Record<string, unknown>, 'crop_size', source);
  else if (c !== undefined && c !== null) throw new Error(`${source}: unsupported crop_size ${JSON.stringify(c)}`);

  const code = json.resample === undefined || json.resample === null ? 3 : num(json.resample, 'resample', source);
  const resample = Object.hasOwn(PIL_RESAMPLE, code) ? PIL_RESAMPLE[code] : undefined;
  if (!resample) throw new Error(`${source}: unknown PIL resample code ${code} (expected ${Object.keys(PIL_RESAMPLE).join(', ')})`);

  return {
    kind: 'hf', backend: backend ?? backendOf(json), size, crop,
    mean: triple(json.image_mean, 'image_mean', OPENAI_CLIP_MEAN, source),
    std: triple(json.image_std, 'image_std', OPENAI_CLIP_STD, source, positive),
    resample,
    doResize: bool('do_resize', true),
    doCenterCrop: bool('do_center_crop', true),
    doRescale: bool('do_rescale', true),
    rescaleFactor: json.rescale_factor === undefined || json.rescale_factor === null ? 1 / 255 : positive(json.rescale_factor, 'rescale_factor', source),
    doNormalize: bool('do_normalize', true),
    ...(json.background_color !== undefined && json.background_color !== null
      ? { background: triple(json.background_color, 'background_color', [255, 255, 255], source, byteValue) } : {}),
    // do_convert_rgb is not modelled: the output is always RGB (the model needs 3 channels).
  };
}

// open_clip's hub layout (open_clip_config.json + open_clip_model.safetensors / open_clip_pytorch_model.bin,
// as the LAION releases ship it): what of its model_cfg and preprocess_cfg we build, and a clear refusal,
// naming the field, of every option that would change the towers in a way we do not build. The state-dict
// names are OpenAI's (openai-clip.ts); the tower config itself is read by openClipConfig (family-configs.ts).
import { openaiPipeline, type RGBTriple } from '../../image/pipelines.js';
import { Fields } from '../config-fields.js';

type Json = Record<string, any>;

/** Why an option is refused: what it would need that our towers do not have. */
const REFUSED_MODEL_CFG: [string, string][] = [
  ['custom_text', 'a CustomTextCLIP (text tower under "text.", e.g. a Hugging Face text model)'],
  ['init_logit_bias', 'a sigmoid-loss (SigLIP-style) model'],
  ['multimodal_cfg', 'a CoCa captioning decoder'],
];
const REFUSED_TOWER_CFG: [string, string][] = [
  ['hf_model_name', 'a Hugging Face text tower (e.g. XLM-RoBERTa for multilingual search)'],
  ['timm_model_name', 'a timm image tower'],
  ['norm_kwargs', 'LayerNorm options other than eps 1e-5'],
  ['act_kwargs', 'activation options'],
  ['no_ln_pre', 'an image tower without ln_pre'],
  ['no_causal_mask', 'a text tower without the causal mask'],
  ['tokenizer_kwargs', 'tokenizer options (e.g. another text cleaning)'],
];

const present = (v: unknown) => v !== undefined && v !== null && v !== false && !(typeof v === 'object' && Object.keys(v as object).length === 0);

/**
 * Refuse model_cfg options whose weights or computation our towers do not reproduce, naming the field
 * (`model_cfg.text_cfg.hf_model_name "xlm-roberta-base" is not supported: ...`). Called before the tower
 * config is read.
 */
export function checkOpenClipModelCfg(json: Json, origin: string): void {
  const root = Fields.of(json, origin);
  const m = root.has('model_cfg') ? root.sub('model_cfg') : root;
  const refuse = (f: Fields, key: string, why: string) => {
    if (present(f.obj[key])) f.fail(key, `${JSON.stringify(f.obj[key]).slice(0, 60)} is not supported: it makes ${why}, which clip-ts does not build`);
  };
  for (const [key, why] of REFUSED_MODEL_CFG) refuse(m, key, why);
  for (const tower of ['vision_cfg', 'text_cfg']) {
    if (!m.has(tower)) continue;
    const t = m.sub(tower);
    for (const [key, why] of REFUSED_TOWER_CFG) refuse(t, key, why);
    const pos = t.obj.pos_embed_type;
    if (pos !== undefined && pos !== null && pos !== 'learnable') refuse(t, 'pos_embed_type', 'fixed (non-learnable) position embeddings');
  }
}

/** open_clip's image_transform options we reproduce: its defaults (torchvision Resize on the shortest edge, bicubic). */
const PREPROCESS_SUPPORTED: Record<string, string[]> = {
  interpolation: ['bicubic'],
  resize_mode: ['shortest'],
};

/**
 * preprocess_cfg -> mean and std for OpenAI's pipeline at `size`, the tower's image_size. Options that
 * change the resize (interpolation, resize_mode) are accepted only at the values that pipeline implements.
 */
export function openClipPreprocess(json: Json | undefined, origin: string, size: number): { mean: number[]; std: number[] } {
  const pp = json?.preprocess_cfg ?? {};
  const where = `${origin}: preprocess_cfg`;
  if (!pp || typeof pp !== 'object' || Array.isArray(pp)) throw new Error(`${where} must be an object`);
  for (const [key, ok] of Object.entries(PREPROCESS_SUPPORTED)) {
    const v = pp[key];
    if (v !== undefined && v !== null && !ok.includes(v)) {
      throw new Error(`${where}.${key} ${JSON.stringify(v)?.slice(0, 40)} is not supported (supported: ${ok.join(', ')})`);
    }
  }
  // One rule for the values (image/pipelines.ts), applied now so a bad file fails at load.
  const p = openaiPipeline(size, pp.mean as RGBTriple | undefined, pp.std as RGBTriple | undefined, where);
  return { mean: [...p.mean], std: [...p.std] };
}

// Short names for well-known CLIP checkpoints on the Hugging Face hub. Data only: add rows, not logic.
export const MODEL_ALIASES: Readonly<Record<string, string>> = {
  'ViT-B-32': 'openai/clip-vit-base-patch32',
  'ViT-B-16': 'openai/clip-vit-base-patch16',
  'ViT-L-14': 'openai/clip-vit-large-patch14',
  'ViT-L-14-336': 'openai/clip-vit-large-patch14-336',
  'chinese-clip-base': 'OFA-Sys/chinese-clip-vit-base-patch16',
  'chinese-clip-large': 'OFA-Sys/chinese-clip-vit-large-patch14',
  // open_clip's LAION ViT releases on the hub, by open_clip's own names (model/pretrained tag, as in its
  // pretrained.py). Their repos hold the open_clip layout (OPEN_CLIP_LAYOUT), which the download picks;
  // plain GELU, OpenAI tokenization. (Those with a Hugging Face text tower, e.g. xlm-roberta-base-ViT-B-32,
  // are refused at load, so they have no row.)
  'ViT-B-32/laion2b_s34b_b79k': 'laion/CLIP-ViT-B-32-laion2B-s34B-b79K',
  'ViT-B-32/datacomp_xl_s13b_b90k': 'laion/CLIP-ViT-B-32-DataComp.XL-s13B-b90K',
  'ViT-B-32-256/datacomp_s34b_b86k': 'laion/CLIP-ViT-B-32-256x256-DataComp-s34B-b86K',
  'ViT-B-16/laion2b_s34b_b88k': 'laion/CLIP-ViT-B-16-laion2B-s34B-b88K',
  'ViT-B-16/datacomp_xl_s13b_b90k': 'laion/CLIP-ViT-B-16-DataComp.XL-s13B-b90K',
  'ViT-L-14/laion2b_s32b_b82k': 'laion/CLIP-ViT-L-14-laion2B-s32B-b82K',
  'ViT-L-14/datacomp_xl_s13b_b90k': 'laion/CLIP-ViT-L-14-DataComp.XL-s13B-b90K',
  'ViT-H-14/laion2b_s32b_b79k': 'laion/CLIP-ViT-H-14-laion2B-s32B-b79K',
  'ViT-g-14/laion2b_s12b_b42k': 'laion/CLIP-ViT-g-14-laion2B-s12B-b42K',
  'ViT-g-14/laion2b_s34b_b88k': 'laion/CLIP-ViT-g-14-laion2B-s34B-b88K',
  'ViT-bigG-14/laion2b_s39b_b160k': 'laion/CLIP-ViT-bigG-14-laion2B-39B-b160k',
};

/** The files an open_clip-layout alias's repo must list; the weights are open_clip_model.safetensors (or its .bin). */
export const OPEN_CLIP_LAYOUT = ['open_clip_config.json'];

/** Aliases whose repo must have the open_clip layout (the LAION rows above). */
export const isOpenClipAlias = (alias: string): boolean => alias.includes('/');

/**
 * The repo an alias stands for; exact match first, then case-insensitive (people type vit-b-32). open_clip's
 * `hf-hub:org/name` spelling is taken as the repo it names.
 */
export function aliasRepo(name: string): string | undefined {
  if (Object.hasOwn(MODEL_ALIASES, name)) return MODEL_ALIASES[name];
  if (name.startsWith('hf-hub:')) return name.slice('hf-hub:'.length);
  const key = Object.keys(MODEL_ALIASES).find((k) => k.toLowerCase() === name.toLowerCase());
  return key ? MODEL_ALIASES[key] : undefined;
}

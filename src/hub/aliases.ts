// Short names for well-known CLIP checkpoints on the Hugging Face hub. Data only: add rows, not logic.
export const MODEL_ALIASES: Readonly<Record<string, string>> = {
  'ViT-B-32': 'openai/clip-vit-base-patch32',
  'ViT-B-16': 'openai/clip-vit-base-patch16',
  'ViT-L-14': 'openai/clip-vit-large-patch14',
  'ViT-L-14-336': 'openai/clip-vit-large-patch14-336',
  'chinese-clip-base': 'OFA-Sys/chinese-clip-vit-base-patch16',
  'chinese-clip-large': 'OFA-Sys/chinese-clip-vit-large-patch14',
};

/** The repo an alias stands for; exact match first, then case-insensitive (people type vit-b-32). */
export function aliasRepo(name: string): string | undefined {
  if (Object.hasOwn(MODEL_ALIASES, name)) return MODEL_ALIASES[name];
  const key = Object.keys(MODEL_ALIASES).find((k) => k.toLowerCase() === name.toLowerCase());
  return key ? MODEL_ALIASES[key] : undefined;
}

// The recipe behind the package's default model: a small CLIP trained from scratch on the emoji
// benchmark that `npm run data` prepares (Noto + Twemoji images, emojibase/emojilib captions).
// Everything that fixes the result is here (tokenizer corpus, config, hyperparameters, seed), so
// `npm run train:emoji` reproduces the shipped weights from a clean clone.
import { readManifest } from '../data/manifests.js';

/** HF CLIPConfig (the subset we set; the rest takes transformers' defaults). */
export const EMOJI_CLIP_CONFIG = {
  projection_dim: 192,
  logit_scale_init_value: 2.6592,
  text_config: {
    hidden_size: 192, intermediate_size: 768, num_attention_heads: 3, num_hidden_layers: 4,
    max_position_embeddings: 32, hidden_act: 'quick_gelu',
  },
  vision_config: {
    hidden_size: 192, intermediate_size: 768, num_attention_heads: 3, num_hidden_layers: 6,
    image_size: 48, patch_size: 8, hidden_act: 'quick_gelu',
  },
};

/** Tokenizer: CLIP-style byte-level BPE trained on the training captions (and icon names when prepared). */
export const EMOJI_TOKENIZER = { vocabSize: 6000, minFrequency: 2, contextLength: 32 };

/** Training hyperparameters (see README "Default model" for how they were chosen). */
export const EMOJI_TRAIN = {
  epochs: 44,
  batchSize: 128,
  lr: 1e-3,
  weightDecay: 0.1,
  warmup: 50,
  gradClip: 1.0,
  seed: 0,
  captions: 'sample' as const,
  augment: 'crop+style' as const,
};

/** Caption corpus for the tokenizer: every caption of the training split (what the text tower sees). */
export const tokenizerCorpus = (root?: string): string[] => readManifest('train', root).flatMap((r) => r.captions);

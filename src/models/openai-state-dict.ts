// OpenAI's released .pt files carry no config: like OpenAI's build_model, read it off the tensor shapes.
import { shapeOf, type TensorSource } from '../io/tensor.js';

// Only the declared shapes are read: the config they give is checked, and the tensors against it, before any data.
function shape(src: TensorSource, key: string): number[] {
  const s = shapeOf(src, key);
  if (!s) throw new Error(`${src.origin}: not an OpenAI CLIP state dict (no "${key}")`);
  return s;
}

/** An open_clip_config.json-shaped object inferred from an OpenAI-keyed state dict. */
export function openaiConfigFromStateDict(src: TensorSource): Record<string, any> {
  const keys = src.keys();
  const count = (re: RegExp) => new Set(keys.map((k) => re.exec(k)?.[1]).filter((x) => x !== undefined)).size;
  let vision: Record<string, unknown>;
  if (src.has('visual.proj')) {
    const conv = shape(src, 'visual.conv1.weight');
    const grid = Math.round(Math.sqrt(shape(src, 'visual.positional_embedding')[0]! - 1));
    vision = {
      width: conv[0], patch_size: conv[3], image_size: conv[3]! * grid,
      layers: count(/^visual\.transformer\.resblocks\.(\d+)\./),
    };
  } else {
    const layers = [1, 2, 3, 4].map((b) => count(new RegExp(`^visual\\.layer${b}\\.(\\d+)\\.`)));
    const outWidth = Math.round(Math.sqrt(shape(src, 'visual.attnpool.positional_embedding')[0]! - 1));
    vision = { layers, width: shape(src, 'visual.layer1.0.conv1.weight')[0], image_size: outWidth * 32 };
  }
  const width = shape(src, 'ln_final.weight')[0]!;
  return {
    model_cfg: {
      embed_dim: shape(src, 'text_projection')[1],
      quick_gelu: true,
      vision_cfg: vision,
      text_cfg: {
        context_length: shape(src, 'positional_embedding')[0],
        vocab_size: shape(src, 'token_embedding.weight')[0],
        width, heads: Math.max(1, Math.floor(width / 64)),
        layers: count(/^transformer\.resblocks\.(\d+)\./),
      },
    },
  };
}

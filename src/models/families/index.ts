// The family registry: every checkpoint family clip-ts loads, in the order their detectors are asked.
// Adding a family = one descriptor file here (+ its tower if new) and its place in FAMILIES (CONTRIBUTING.md).
import type { CheckpointLocation, FamilyDescriptor } from '../family.js';
import { chineseClip } from './chinese-clip.js';
import { hfClip } from './hf-clip.js';
import { onnxExport } from './onnx.js';
import { openClip } from './openai-clip.js';
import { siglip } from './siglip.js';
import { taiyi } from './taiyi.js';

/**
 * Detection order, most specific first: a pairing file names its own kind; open_clip_config.json wins over a
 * config.json beside it; ONNX towers win over an HF config when asked for or when no weights are there;
 * then the HF families by config.json's model_type.
 */
export const FAMILIES: readonly FamilyDescriptor[] = [taiyi, openClip, onnxExport, hfClip, chineseClip, siglip];

/** The descriptor of a family name (`Checkpoint.family`). */
export function familyNamed(name: string): FamilyDescriptor {
  const f = FAMILIES.find((d) => d.name === name);
  if (!f) throw new Error(`unknown model family "${name}" (known: ${FAMILIES.map((d) => d.name).join(', ')})`);
  return f;
}

/** The first family whose detector recognizes `loc`, or undefined. */
export function detectFamily(loc: CheckpointLocation): FamilyDescriptor | undefined {
  return FAMILIES.find((d) => d.detect(loc));
}

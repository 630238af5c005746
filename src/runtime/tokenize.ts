// The tokenizer a checkpoint needs: its own tokenizer.json (or --tokenizer), in the mode its family was trained with.
import type { Checkpoint } from '../models/checkpoint.js';
import { familyNamed } from '../models/families/index.js';
import { loadTokenizer } from '../text/index.js';
import type { TextTokenizer } from '../text/types.js';

export function makeTokenizer(ck: Checkpoint): TextTokenizer {
  if (!ck.tokenizerDir) {
    throw new Error(`${ck.path}: no tokenizer.json next to the checkpoint; pass --tokenizer <dir> (a directory with a CLIP tokenizer.json)`);
  }
  // Ids past the text tower's embedding table would fail inside ONNX Runtime: refuse them at load.
  return loadTokenizer(ck.tokenizerDir, {
    mode: ck.tokenizerMode, contextLength: ck.contextLength, vocabSize: ck.config?.text.vocabSize,
    sentencepiece: familyNamed(ck.family).tokenizer.sentencepiece, tokenizerJson: familyNamed(ck.family).tokenizer.tokenizerJson,
    clean: ck.textClean,
  });
}

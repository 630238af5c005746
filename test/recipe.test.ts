// The shipped default model is what the recipe says: same towers, tokenizer size and context.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'node:test';
import { BUNDLED_MODELS } from '../src/hub/bundled.js';
import { EMOJI_CLIP_CONFIG, EMOJI_TOKENIZER } from '../src/recipes/emoji-clip.js';

test('models/emoji-clip matches the recipe in src/recipes/emoji-clip.ts', () => {
  const dir = BUNDLED_MODELS['emoji-clip']!.dir;
  const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  assert.equal(cfg.projection_dim, EMOJI_CLIP_CONFIG.projection_dim);
  for (const tower of ['text_config', 'vision_config'] as const) {
    for (const [k, v] of Object.entries(EMOJI_CLIP_CONFIG[tower])) assert.equal(cfg[tower][k], v, `${tower}.${k}`);
  }
  const tok = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8'));
  assert.equal(Object.keys(tok.model.vocab).length, EMOJI_TOKENIZER.vocabSize);
  assert.equal(cfg.text_config.vocab_size, EMOJI_TOKENIZER.vocabSize);
  const tc = JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8'));
  assert.equal(tc.model_max_length, EMOJI_TOKENIZER.contextLength);
  const report = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8'));
  assert.ok(report.recipe.trainSeconds <= 30 * 60, `trained for ${report.recipe.trainSeconds} s`);
});

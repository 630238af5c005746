// EasyNLP TSV has one reader (src/tasks/easynlp-tsv.ts): the embed job's inputs and the eval / train pairs
// see the same rows, columns and layout of a file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { readCell, readRetrievalTsv, scanTsv } from '../src/tasks/easynlp-tsv.js';

test('embed inputs and retrieval pairs read the same rows of an EasyNLP TSV', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'clip-tsv-'));
  try {
    const png = (c: string) => sharp({ create: { width: 3, height: 2, channels: 3, background: c } }).png().toBuffer();
    const [red, blue] = [await png('#f00'), await png('#00f')];
    // CRLF endings, a blank line, a whitespace-only line (an editor's trailing spaces), image-first columns.
    const file = join(dir, 'pairs.tsv');
    writeFileSync(file, `${red.toString('base64')}\ta red one\r\n\n   \r\n${blue.toString('base64')}\ta blue one\r\n`);

    const pairs = await readRetrievalTsv(file, { dedupe: false });
    const inputs = scanTsv(file);
    assert.deepEqual(inputs.invalid, [], 'a whitespace-only line is skipped, not a row with the wrong column count');
    const texts = inputs.items.flatMap((i) => (i.kind === 'text' ? [i.text] : []));
    const images = inputs.items.flatMap((i) => (i.kind === 'image' && 'cell' in i ? [Buffer.from(readCell(i.cell, i.id))] : []));
    assert.deepEqual(texts, ['a red one', 'a blue one']);
    assert.deepEqual(pairs.texts.map((t) => t.text), texts);
    assert.deepEqual(pairs.images.map((im) => Buffer.from(im.input as Uint8Array)), images);
    assert.deepEqual(images, [red, blue]);
    assert.deepEqual(inputs.items.map((i) => i.id.slice(dir.length + 1)), ['pairs.tsv:1:text', 'pairs.tsv:1:image', 'pairs.tsv:4:text', 'pairs.tsv:4:image']);
    assert.deepEqual(pairs.images.map((im) => im.name), ['pairs.tsv:1', 'pairs.tsv:4']);

    // A first line with no image column is refused by both, naming the line.
    const bad = join(dir, 'bad.tsv');
    writeFileSync(bad, 'just\ttext\n');
    assert.throws(() => scanTsv(bad), /bad\.tsv:1: two columns, but neither is a base64 image/);
    await assert.rejects(readRetrievalTsv(bad), /bad\.tsv:1: two columns, but neither is a base64 image/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// Image preprocessing: PIL/torch-exact resamplers on hand-checkable cases, and both CLIP
// pipelines against the Python reference pixels in ../shared/fixtures.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32, deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { SafetensorsFile } from '../src/io/safetensors.js';
import { toFloat32 } from '../src/io/tensor.js';
import {
  type DecodedImage, centerCropHFNumpy, centerCropHFTorch, centerCropTorchvision, decodeImage, makeImage,
  openaiPipeline, pilResize, pipelineFromPreprocessorConfig, premultiply, preprocess, preprocessBatch,
  preprocessToUint8, resampleBands, resampleBandsTorch, resizeNearest, roundHalfEven, shortestEdgeSize,
  toRGB, unpremultiply,
} from '../src/image/index.js';
import { SKIP_FIXTURES, fixture } from './fixtures.js';

const u8 = (...v: number[]): Uint8Array => Uint8Array.from(v);
const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  assert.equal(a.length, b.length, 'length mismatch');
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};
const randomImage = (w: number, h: number, ch: number, seed = 1): Uint8Array => {
  let s = seed;
  return Uint8Array.from({ length: w * h * ch }, () => ((s = (s * 1103515245 + 12345) >>> 0) >>> 16) & 255);
};

describe('PIL resampler', () => {
  test('same size is an exact copy for every filter', () => {
    const src = randomImage(7, 5, 3);
    for (const f of ['nearest', 'box', 'bilinear', 'hamming', 'bicubic', 'lanczos'] as const) {
      assert.deepEqual(resampleBands(src, 7, 5, 3, 7, 5, f), src, f);
    }
  });

  test('a constant image stays constant (taps sum to one in fixed point)', () => {
    for (const [w, h, ow, oh] of [[37, 23, 11, 7], [5, 4, 33, 29], [100, 3, 9, 12]] as const) {
      const src = new Uint8Array(w * h * 2).fill(173);
      for (const f of ['bilinear', 'bicubic', 'lanczos', 'hamming', 'box'] as const) {
        const out = resampleBands(src, w, h, 2, ow, oh, f);
        assert.ok(out.every((v) => v === 173), `${f} ${w}x${h}->${ow}x${oh}`);
      }
    }
  });

  test('bilinear 4 -> 2 by hand: taps 3/7, 3/7, 1/7', () => {
    // Output 0: center 1, inputs 0..2 with triangle weights .75 .75 .25 -> 0*3/7 + 70*3/7 + 140/7 = 50.
    // Output 1: center 3, inputs 1..3 with weights .25 .75 .75 -> 10 + 60 + 90 = 160.
    assert.deepEqual(resampleBands(u8(0, 70, 140, 210), 4, 1, 1, 2, 1, 'bilinear'), u8(50, 160));
    // Same along the vertical axis.
    assert.deepEqual(resampleBands(u8(0, 70, 140, 210), 1, 4, 1, 1, 2, 'bilinear'), u8(50, 160));
  });

  test('bicubic overshoot is clipped to 0..255', () => {
    const out = resampleBands(u8(0, 0, 255, 255), 4, 1, 1, 8, 1, 'bicubic');
    assert.ok(out.includes(0) && out.includes(255));
    // By hand: output 3 has taps -0.0703, 0.8672, 0.2266, -0.0234 -> 255 * 0.2031 = 51.8; output 2 is
    // 255 * -0.0703 / 1.0234 < 0 and output 5 is 255 * 1.0938 / 1.0234 > 255 (edge taps renormalized).
    assert.deepEqual(Array.from(out), [0, 0, 0, 52, 203, 255, 255, 255]);
  });

  test('NEAREST uses Pillow source positions (i + 0.5) * scale, truncated', () => {
    assert.deepEqual(resizeNearest(u8(10, 20, 30, 40), 4, 1, 1, 2, 1), u8(20, 40));
    assert.deepEqual(resizeNearest(u8(10, 20), 2, 1, 1, 4, 1), u8(10, 10, 20, 20));
    assert.deepEqual(resizeNearest(u8(1, 2, 3, 4, 5, 6), 3, 1, 2, 2, 1), u8(1, 2, 5, 6));
  });
});

describe('PIL Image.resize mode handling', () => {
  test('RGBA resizes premultiplied: transparent pixels do not bleed colour', () => {
    const img = makeImage(2, 1, 'RGBA', u8(255, 0, 0, 255, 0, 255, 0, 0));
    // Straight averaging would give green 128; premultiplied gives pure red at half alpha.
    assert.deepEqual(pilResize(img, 1, 1, 'bilinear').data, u8(255, 0, 0, 128));
    // NEAREST skips the premultiplication round trip.
    assert.deepEqual(pilResize(img, 1, 1, 'nearest').data, u8(0, 255, 0, 0));
  });

  test('premultiply/unpremultiply use Pillow integer rounding', () => {
    assert.deepEqual(premultiply(u8(200, 100, 50, 128), 4), u8(100, 50, 25, 128));
    assert.deepEqual(unpremultiply(u8(100, 50, 25, 128), 4), u8(199, 99, 49, 128));
    assert.deepEqual(unpremultiply(u8(7, 9, 0, 0, 7, 9, 0, 255), 4), u8(7, 9, 0, 0, 7, 9, 0, 255));
    assert.deepEqual(unpremultiply(u8(200, 100), 2), u8(255, 100)); // clipped
  });

  test("'P' and '1' images always resize with NEAREST", () => {
    const p = makeImage(4, 1, 'P', u8(10, 0, 0, 20, 0, 0, 30, 0, 0, 40, 0, 0), 3);
    assert.deepEqual(pilResize(p, 2, 1, 'bicubic').data, u8(20, 0, 0, 40, 0, 0));
  });

  test('convert RGB: grey replicated, alpha dropped without compositing', () => {
    assert.deepEqual(toRGB(makeImage(2, 1, 'L', u8(5, 250))).data, u8(5, 5, 5, 250, 250, 250));
    assert.deepEqual(toRGB(makeImage(1, 1, 'LA', u8(9, 0))).data, u8(9, 9, 9));
    assert.deepEqual(toRGB(makeImage(1, 1, 'RGBA', u8(1, 2, 3, 0))).data, u8(1, 2, 3));
  });
});

describe('torch uint8 antialiased resampler', () => {
  test('same size copies, constant stays constant', () => {
    const src = randomImage(6, 4, 3);
    assert.deepEqual(resampleBandsTorch(src, 6, 4, 3, 6, 4, 'bicubic'), src);
    const flat = new Uint8Array(31 * 17 * 3).fill(91);
    for (const [ow, oh] of [[8, 5], [70, 40]] as const) {
      for (const f of ['bicubic', 'bilinear'] as const) {
        assert.ok(resampleBandsTorch(flat, 31, 17, 3, ow, oh, f).every((v) => v === 91), `${f} ${ow}x${oh}`);
      }
    }
  });

  test('bilinear 4 -> 2 by hand matches the exact weights', () => {
    assert.deepEqual(resampleBandsTorch(u8(0, 70, 140, 210), 4, 1, 1, 2, 1, 'bilinear'), u8(50, 160));
  });

  test('stays within one level of PIL on random data', () => {
    const src = randomImage(53, 41, 3, 7);
    const a = resampleBands(src, 53, 41, 3, 20, 16, 'bicubic');
    const b = resampleBandsTorch(src, 53, 41, 3, 20, 16, 'bicubic');
    assert.ok(maxAbsDiff(a, b) <= 1);
  });
});

describe('size and crop rules', () => {
  test('shortest edge: long side is int(size * long / short)', () => {
    assert.deepEqual(shortestEdgeSize(640, 427, 224), { width: 335, height: 224 });
    assert.deepEqual(shortestEdgeSize(90, 700, 224), { width: 224, height: 1742 });
    assert.deepEqual(shortestEdgeSize(33, 20, 224), { width: 369, height: 224 });
  });

  test("Python round: half to even", () => {
    assert.deepEqual([0.5, 1.5, 2.5, 55.5, 3.4, 3.6].map(roundHalfEven), [0, 2, 2, 56, 3, 4]);
  });

  test('center-crop offsets of the three references', () => {
    const img = makeImage(5, 1, 'L', u8(1, 2, 3, 4, 5));
    assert.deepEqual(centerCropTorchvision(img, 1, 2).data, u8(3, 4)); // round(1.5) = 2
    assert.deepEqual(centerCropHFNumpy(img, 1, 2).data, u8(2, 3)); // floor(1.5) = 1
    assert.deepEqual(centerCropHFTorch(img, 1, 2).data, u8(2, 3)); // int(1.5) = 1
    const small = makeImage(1, 1, 'L', u8(9));
    // Crop 4 from 1: torchvision pads 3 // 2 = 1 before; transformers' numpy crop pads 2 before.
    assert.deepEqual(centerCropTorchvision(small, 1, 4).data, u8(0, 9, 0, 0));
    assert.deepEqual(centerCropHFTorch(small, 1, 4).data, u8(0, 9, 0, 0));
    assert.deepEqual(centerCropHFNumpy(small, 1, 4).data, u8(0, 0, 9, 0));
  });
});

describe('preprocessor config', () => {
  test('parses modern and legacy forms, with CLIP defaults', () => {
    const p = pipelineFromPreprocessorConfig({ size: 336, crop_size: 336, resample: 2 });
    assert.equal(p.kind, 'hf');
    assert.equal(p.size, 336);
    assert.deepEqual(p.crop, { height: 336, width: 336 });
    assert.equal(p.resample, 'bilinear');
    assert.equal(p.backend, 'torchvision');
    assert.ok(p.doResize && p.doCenterCrop && p.doRescale && p.doNormalize);
    assert.deepEqual(p.mean, [0.48145466, 0.4578275, 0.40821073]);
    const q = pipelineFromPreprocessorConfig({ size: { height: 224, width: 224 }, image_processor_type: 'CLIPImageProcessorPil' });
    assert.deepEqual(q.size, { height: 224, width: 224 });
    assert.equal(q.backend, 'pil');
    assert.equal(pipelineFromPreprocessorConfig({}, 'pil').backend, 'pil');
    assert.throws(() => pipelineFromPreprocessorConfig({ resample: 9 }), /resample code 9/);
    assert.throws(() => pipelineFromPreprocessorConfig({ size: { longest_edge: 5 } }), /unsupported size/);
  });

  test('openaiPipeline defaults', () => {
    const p = openaiPipeline(64);
    assert.equal(p.kind, 'openai');
    assert.deepEqual(p.crop, { height: 64, width: 64 });
    assert.equal(p.resample, 'bicubic');
  });
});

describe('decode errors', () => {
  const dir = mkdtempSync(join(tmpdir(), 'clip-preprocess-'));

  test('missing file names the file', async () => {
    const path = join(dir, 'does-not-exist.png');
    await assert.rejects(decodeImage(path), (e: Error) => e.message.includes(path) && /not found/.test(e.message));
  });

  test('corrupt file names the file', async () => {
    const path = join(dir, 'corrupt.jpg');
    writeFileSync(path, 'this is not an image');
    await assert.rejects(decodeImage(path), (e: Error) => e.message.startsWith(`cannot decode image ${path}:`));
  });

  test('buffer input uses the given name', async () => {
    await assert.rejects(decodeImage(u8(1, 2, 3), 'upload #3'), /cannot decode image upload #3:/);
  });

  test('truncated JPEG is an error, as in PIL', { skip: SKIP_FIXTURES }, async () => {
    const bytes = readFileSync(fixture('common', 'images', 'chelsea-q90.jpg'));
    await assert.rejects(decodeImage(bytes.subarray(0, bytes.length >> 1), 'half.jpg'), /cannot decode image half\.jpg:/);
  });

  test('unsupported format is refused', async () => {
    const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>');
    await assert.rejects(decodeImage(svg, 'x.svg'), /unsupported image format "svg"/);
  });
});

/** A minimal PNG: filter byte 0 per row, optional extra chunks (e.g. tRNS) before IDAT. */
function png(w: number, h: number, bitDepth: number, colorType: number, rows: number[][], extra: [string, Uint8Array][] = []): Buffer {
  const chunk = (type: string, data: Uint8Array): Buffer => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const out = Buffer.alloc(12 + data.length);
    out.writeUInt32BE(data.length, 0);
    body.copy(out, 4);
    out.writeUInt32BE(crc32(body), 8 + data.length);
    return out;
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = bitDepth;
  ihdr[9] = colorType;
  const raw = Buffer.concat(rows.map((r) => Uint8Array.from([0, ...r])));
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr),
    ...extra.map(([t, d]) => chunk(t, d)), chunk('IDAT', deflateSync(raw)), chunk('IEND', new Uint8Array(0)),
  ]);
}

describe('decoded PIL modes', () => {
  test("grey + alpha PNG is 'LA'", async () => {
    const img = await decodeImage(png(2, 1, 8, 4, [[10, 255, 200, 0]]));
    assert.equal(img.mode, 'LA');
    assert.deepEqual(img.data, u8(10, 255, 200, 0));
  });

  test("1-bit grey PNG is '1' with 0/255 values", async () => {
    const img = await decodeImage(png(3, 1, 1, 0, [[0b10100000]]));
    assert.equal(img.mode, '1');
    assert.deepEqual(img.data, u8(255, 0, 255));
  });

  test("tRNS keeps grey and RGB PNGs in 'L' / 'RGB' (PIL keeps transparency in .info)", async () => {
    const grey = await decodeImage(png(2, 1, 8, 0, [[7, 9]], [['tRNS', u8(0, 7)]]));
    assert.equal(grey.mode, 'L');
    assert.deepEqual(grey.data, u8(7, 9));
    const rgb = await decodeImage(png(1, 1, 8, 2, [[1, 2, 3]], [['tRNS', u8(0, 1, 0, 2, 0, 3)]]));
    assert.equal(rgb.mode, 'RGB');
    assert.deepEqual(rgb.data, u8(1, 2, 3));
  });

  test("palette PNG is 'P' holding its colours (alpha too when tRNS is present)", async () => {
    const plte = u8(255, 0, 0, 0, 0, 255);
    const p = await decodeImage(png(2, 1, 8, 3, [[1, 0]], [['PLTE', plte]]));
    assert.equal(p.mode, 'P');
    assert.deepEqual(p.data, u8(0, 0, 255, 255, 0, 0));
    const pa = await decodeImage(png(2, 1, 8, 3, [[1, 0]], [['PLTE', plte], ['tRNS', u8(128)]]));
    assert.equal(pa.mode, 'P');
    assert.equal(pa.channels, 4);
    assert.deepEqual(toRGB(pa).data, u8(0, 0, 255, 255, 0, 0));
  });

  test("lossless WebP with alpha is 'RGBA'", async () => {
    const px = u8(10, 20, 30, 40, 50, 60, 70, 255);
    const webp = await sharp(px, { raw: { width: 2, height: 1, channels: 4 } }).webp({ lossless: true, exact: true }).toBuffer();
    const img = await decodeImage(webp);
    assert.equal(img.mode, 'RGBA');
    assert.deepEqual(img.data, px);
  });

  test('EXIF orientation is not applied (PIL does not rotate on open)', async () => {
    const jpg = await sharp(new Uint8Array(4 * 2 * 3).fill(128), { raw: { width: 4, height: 2, channels: 3 } })
      .jpeg().withMetadata({ orientation: 6 }).toBuffer();
    const img = await decodeImage(jpg);
    assert.deepEqual([img.width, img.height], [4, 2]);
  });
});

describe('against the Python reference', { skip: SKIP_FIXTURES }, () => {
  const meta = () => JSON.parse(readFileSync(fixture('common', 'preprocess.json'), 'utf8')) as {
    images: Record<string, { mode: string; size: [number, number] }>;
  };
  const golden = () => new SafetensorsFile(fixture('common', 'preprocess.safetensors'));
  const hfConfig = () => JSON.parse(readFileSync(fixture('hf-clip-tiny', 'preprocessor_config.json'), 'utf8'));
  const photos = ['astronaut.png', 'chelsea.png', 'coffee.png', 'rocket.png', 'china.jpg', 'flower.jpg'];

  test('decoded mode and size match PIL', async () => {
    for (const [file, m] of Object.entries(meta().images)) {
      const img = await decodeImage(fixture('common', 'images', file));
      assert.equal(img.mode, m.mode, file);
      assert.deepEqual([img.width, img.height], m.size, file);
    }
  });

  test('uint8 stage of both pipelines is within 1 level on every image, 224 and 64', async (t) => {
    const st = golden();
    const hf = hfConfig();
    const images: Record<string, DecodedImage> = {};
    for (const file of Object.keys(meta().images)) images[file] = await decodeImage(fixture('common', 'images', file));
    for (const n of [224, 64]) {
      const pipes = {
        openai: openaiPipeline(n),
        hf: pipelineFromPreprocessorConfig({ ...hf, size: { shortest_edge: n }, crop_size: { height: n, width: n } }),
      };
      for (const [kind, p] of Object.entries(pipes)) {
        const report: string[] = [];
        for (const [file, img] of Object.entries(images)) {
          const raw = st.get(`${kind}_${n}/${file}`);
          assert.deepEqual(raw.shape, [n, n, 3]);
          const want = raw.bytes;
          const got = preprocessToUint8(img, p);
          assert.deepEqual([got.width, got.height], [n, n]);
          const d = maxAbsDiff(got.data, want);
          report.push(`${file}=${d}`);
          assert.ok(d <= 1, `${kind}_${n}/${file}: max diff ${d}`);
        }
        t.diagnostic(`${kind}_${n} max |diff|: ${report.join(' ')}`);
      }
    }
  });

  test('fully normalized astronaut (HF) within 1e-5', async (t) => {
    const want = toFloat32(golden().get('hf_224_normalized/astronaut.png'));
    const got = await preprocess(fixture('common', 'images', 'astronaut.png'), pipelineFromPreprocessorConfig(hfConfig()));
    const d = maxAbsDiff(got.pixels, want);
    t.diagnostic(`hf_224_normalized/astronaut.png max |diff| = ${d}`);
    assert.ok(d <= 1e-5, `max diff ${d}`);
  });

  test('batches match the pixel_values of every image-tower golden', async (t) => {
    const paths = photos.map((f) => fixture('common', 'images', f));
    const cases = [
      ['hf-clip-tiny', pipelineFromPreprocessorConfig(hfConfig())],
      ['openai-vit-tiny', openaiPipeline(224)],
      ['openai-rn-tiny', openaiPipeline(224)],
      ['zh-clip-tiny', pipelineFromPreprocessorConfig(JSON.parse(readFileSync(fixture('zh-clip-tiny', 'preprocessor_config.json'), 'utf8')))],
    ] as const;
    for (const [model, p] of cases) {
      const want = new SafetensorsFile(fixture(model, 'golden.safetensors')).get('pixel_values');
      const got = await preprocessBatch(paths, p);
      assert.deepEqual(got.dims, want.shape);
      const d = maxAbsDiff(got.data, toFloat32(want));
      t.diagnostic(`${model} pixel_values max |diff| = ${d}`);
      assert.ok(d <= 1e-5, `${model}: max diff ${d}`);
    }
  });

  test('preprocessBatch equals per-image preprocess', async () => {
    const p = pipelineFromPreprocessorConfig(hfConfig());
    const paths = photos.slice(0, 2).map((f) => fixture('common', 'images', f));
    const batch = await preprocessBatch(paths, p);
    const per = 3 * 224 * 224;
    for (let i = 0; i < paths.length; i++) {
      const one = await preprocess(paths[i]!, p);
      assert.deepEqual(batch.data.subarray(i * per, (i + 1) * per), one.pixels);
    }
  });
});

test('background_color (our extension) composites alpha over the colour; without it alpha is dropped like PIL', () => {
  // 2x2 RGBA: opaque red, transparent black, half-transparent blue, opaque green.
  const img = makeImage(2, 2, 'RGBA', u8(255, 0, 0, 255, 0, 0, 0, 0, 0, 0, 255, 128, 0, 255, 0, 255), 4);
  const cfg = { size: { height: 2, width: 2 }, crop_size: { height: 2, width: 2 }, do_resize: false, do_center_crop: false };
  const dropped = preprocessToUint8(img, pipelineFromPreprocessorConfig(cfg));
  assert.deepEqual([...dropped.data], [255, 0, 0, 0, 0, 0, 0, 0, 255, 0, 255, 0]);
  const white = preprocessToUint8(img, pipelineFromPreprocessorConfig({ ...cfg, background_color: [255, 255, 255] }));
  assert.deepEqual([...white.data], [255, 0, 0, 255, 255, 255, 127, 127, 255, 0, 255, 0]);
  assert.throws(() => pipelineFromPreprocessorConfig({ ...cfg, background_color: [1, 2] }), /background_color/);
});

// Every benchmark image is written as an opaque RGB PNG composited on white. The sources are RGBA
// (emoji PNGs, SVGs, stamps) and decoders differ on what transparent pixels become — a PIL-style
// convert('RGB') keeps the black under them — so training and evaluation would otherwise see black
// backgrounds in one place and white in another. White is what emojis are drawn for.
import { readFile } from 'node:fs/promises';
import sharp from 'sharp';

export const WHITE = { r: 255, g: 255, b: 255, alpha: 1 };

/**
 * The SVG with its root `width`/`height` set to `size`, so librsvg renders it at the target size
 * directly (a non-square viewBox keeps its aspect and is centred). Files without a viewBox get one
 * from their old width/height so they scale rather than crop.
 */
export function sizedSvg(svg: string, size: number): string {
  const m = /<svg\b[^>]*>/i.exec(svg);
  if (!m) throw new Error('not an SVG (no <svg> element)');
  let tag = m[0];
  const attr = (name: string) => new RegExp(`\\s${name}\\s*=\\s*(["'])([^"']*)\\1`, 'i').exec(tag)?.[2];
  if (!attr('viewBox')) {
    const w = parseFloat(attr('width') ?? '');
    const h = parseFloat(attr('height') ?? '');
    if (w > 0 && h > 0) tag = tag.replace(/^<svg\b/i, `<svg viewBox="0 0 ${w} ${h}"`);
  }
  tag = tag.replace(/\s(width|height)\s*=\s*(["'])[^"']*\2/gi, '');
  tag = tag.replace(/^<svg\b/i, `<svg width="${size}" height="${size}"`);
  return svg.slice(0, m.index) + tag + svg.slice(m.index + m[0].length);
}

/** Flatten on white, fit inside a `size` square (padding with white), drop alpha, write PNG. */
async function finish(img: ReturnType<typeof sharp>, dst: string, size: number): Promise<void> {
  await img.flatten({ background: WHITE }).resize(size, size, { fit: 'contain', background: WHITE })
    .removeAlpha().toColourspace('srgb').png().toFile(dst);
}

/** A raster image (PNG) -> `size`² RGB PNG on white. */
export async function rasterToPng(src: string, dst: string, size: number): Promise<void> {
  await finish(sharp(await readFile(src)), dst, size);
}

/** SVG text -> `size`² RGB PNG on white. */
export async function svgToPng(svg: string, dst: string, size: number): Promise<void> {
  await finish(sharp(Buffer.from(sizedSvg(svg, size))), dst, size);
}

/** Gray pixels (row-major, one byte each) -> RGB PNG, unchanged in size. */
export async function grayToPng(pixels: Uint8Array, width: number, height: number, dst: string): Promise<void> {
  await sharp(pixels, { raw: { width, height, channels: 1 } }).toColourspace('srgb').png().toFile(dst);
}

// In-memory image as PIL would hold it after Image.open(): the mode decides how resize and
// convert('RGB') treat the pixels, so it travels with the data.

/**
 * PIL image modes we reproduce. '1' is a 1-bit image stored as 0/255 bytes.
 * 'P' (palette) is stored as its looked-up colours (RGB, or RGBA when the palette has
 * transparency): PIL resizes 'P' with NEAREST, which maps indices and colours alike.
 */
export type ImageMode = '1' | 'L' | 'LA' | 'RGB' | 'RGBA' | 'P';

export interface DecodedImage {
  width: number;
  height: number;
  mode: ImageMode;
  /** Interleaved bytes per pixel: 1 ('1', 'L'), 2 ('LA'), 3 ('RGB'; 'P' without alpha), 4 ('RGBA'; 'P' with alpha). */
  channels: 1 | 2 | 3 | 4;
  /** Row-major, height * width * channels bytes. */
  data: Uint8Array;
}

/** Channel count implied by a mode ('P' depends on whether the palette has alpha). */
export function channelsOf(mode: ImageMode, paletteHasAlpha = false): 1 | 2 | 3 | 4 {
  switch (mode) {
    case '1': case 'L': return 1;
    case 'LA': return 2;
    case 'RGB': return 3;
    case 'RGBA': return 4;
    case 'P': return paletteHasAlpha ? 4 : 3;
  }
}

/** Build an image, checking that the buffer matches its declared size. */
export function makeImage(width: number, height: number, mode: ImageMode, data: Uint8Array, channels?: 1 | 2 | 3 | 4): DecodedImage {
  const ch = channels ?? channelsOf(mode);
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new Error(`invalid image size ${width}x${height}`);
  }
  if (data.length !== width * height * ch) {
    throw new Error(`image data has ${data.length} bytes, expected ${width}x${height}x${ch} = ${width * height * ch}`);
  }
  return { width, height, mode, channels: ch, data };
}

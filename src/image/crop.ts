// Cropping with zero fill outside the image, and the center-crop offset rules of the
// reference pipelines (they disagree by one pixel when the excess is odd).
import { type DecodedImage, makeImage } from './types.js';

/** PIL Image.crop((left, top, left + width, top + height)): areas outside the image are 0. */
export function cropZeroPad(img: DecodedImage, left: number, top: number, width: number, height: number): DecodedImage {
  const ch = img.channels;
  const out = new Uint8Array(width * height * ch);
  const x0 = Math.max(0, -left), x1 = Math.min(width, img.width - left);
  if (x1 > x0) {
    for (let y = 0; y < height; y++) {
      const sy = y + top;
      if (sy < 0 || sy >= img.height) continue;
      const s = (sy * img.width + left + x0) * ch;
      out.set(img.data.subarray(s, s + (x1 - x0) * ch), (y * width + x0) * ch);
    }
  }
  return makeImage(width, height, img.mode, out, ch);
}

/** Python's round() on a float: ties go to the even integer. */
export function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/**
 * torchvision CenterCrop on a PIL image: a too-small side is first padded with
 * (excess // 2) before and the rest after; a large-enough side is cropped at
 * round((size - crop) / 2) with round-half-even.
 */
export function centerCropTorchvision(img: DecodedImage, cropHeight: number, cropWidth: number): DecodedImage {
  const offset = (size: number, crop: number): number =>
    crop > size ? -Math.floor((crop - size) / 2) : roundHalfEven((size - crop) / 2);
  return cropZeroPad(img, offset(img.width, cropWidth), offset(img.height, cropHeight), cropWidth, cropHeight);
}

/**
 * transformers' numpy center_crop (PIL backend, and v4's CLIPImageProcessor): offset
 * floor((size - crop) / 2), so on a too-small side the zero padding puts the larger half first.
 */
export function centerCropHFNumpy(img: DecodedImage, cropHeight: number, cropWidth: number): DecodedImage {
  const top = Math.floor((img.height - cropHeight) / 2);
  const left = Math.floor((img.width - cropWidth) / 2);
  return cropZeroPad(img, left, top, cropWidth, cropHeight);
}

/**
 * transformers' torchvision-backend center_crop (v5's default CLIPImageProcessor): pads a
 * too-small side like torchvision (smaller half first), otherwise int((size - crop) / 2).
 */
export function centerCropHFTorch(img: DecodedImage, cropHeight: number, cropWidth: number): DecodedImage {
  const offset = (size: number, crop: number): number =>
    crop > size ? -Math.floor((crop - size) / 2) : Math.trunc((size - crop) / 2);
  return cropZeroPad(img, offset(img.width, cropWidth), offset(img.height, cropHeight), cropWidth, cropHeight);
}

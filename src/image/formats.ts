// The image formats the decoder reads (image/decode.ts), and the file extensions every folder walk, input
// list and query parser derives from them: one list, so nothing is collected that decoding then refuses.
import { extname } from 'node:path';

export const IMAGE_FORMATS = { jpeg: ['.jpg', '.jpeg'], png: ['.png'], webp: ['.webp'] } as const;
export type ImageFormat = keyof typeof IMAGE_FORMATS;

export const IMAGE_EXTENSIONS: readonly string[] = Object.values(IMAGE_FORMATS).flat();

export const isImagePath = (p: string): boolean => IMAGE_EXTENSIONS.includes(extname(p).toLowerCase());

// Inline thumbnails for `clip search --preview`, in the two protocols terminals actually ship:
// iTerm2's OSC 1337 (iTerm2, WezTerm) and kitty's graphics protocol (kitty, Ghostty).
import sharp from 'sharp';

export type PreviewProtocol = 'iterm' | 'kitty';

export function detectPreview(env: NodeJS.ProcessEnv = process.env): PreviewProtocol | undefined {
  if (env.TERM_PROGRAM === 'iTerm.app' || env.LC_TERMINAL === 'iTerm2' || env.TERM_PROGRAM === 'WezTerm') return 'iterm';
  if (env.TERM === 'xterm-kitty' || env.KITTY_WINDOW_ID || env.TERM_PROGRAM === 'ghostty') return 'kitty';
  return undefined;
}

/** Escape sequence that draws `path` as a thumbnail `rows` text lines high, followed by a newline. */
export async function previewSequence(path: string, protocol: PreviewProtocol, rows = 8): Promise<string> {
  // A small PNG keeps the sequence short (terminals choke on multi-megabyte escapes) and sidesteps formats
  // the terminal cannot decode.
  const png = await sharp(path).resize(256, 256, { fit: 'inside', withoutEnlargement: true }).png().toBuffer();
  const b64 = png.toString('base64');
  if (protocol === 'iterm') return `\x1b]1337;File=inline=1;size=${png.length};height=${rows};preserveAspectRatio=1:${b64}\x07\n`;
  // kitty: payload in chunks of at most 4096 bytes; m=1 on all but the last.
  const chunks = b64.match(/.{1,4096}/g) ?? [];
  return chunks.map((c, i) => {
    const more = i < chunks.length - 1 ? 1 : 0;
    return i === 0 ? `\x1b_Ga=T,f=100,r=${rows},m=${more};${c}\x1b\\` : `\x1b_Gm=${more};${c}\x1b\\`;
  }).join('') + '\n';
}

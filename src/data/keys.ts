// Concept keys: every emoji source spells codepoint sequences differently ("0023-FE0F-20E3", "1f600",
// "1F468 200D 1F469", or the emoji itself), so all joins go through one normal form: lower-case hex,
// at least four digits, joined by "-", with the emoji presentation selector U+FE0F dropped (sources
// disagree on where they keep it; the concept is the same either way).

const FE0F = 0xfe0f;

function keyFromCodepoints(cps: number[]): string {
  return cps.filter((c) => c !== FE0F).map((c) => c.toString(16).padStart(4, '0')).join('-');
}

/** "0023-FE0F-20E3" / "1F600" / "1f468_200d_1f469" / "U+1F600" -> "0023-20e3" / "1f600" / "1f468-200d-1f469". */
export function conceptKey(hex: string): string {
  const parts = hex.trim().split(/[-_\s]+/).filter(Boolean).map((p) => p.replace(/^u\+/i, ''));
  const cps = parts.map((p) => {
    if (!/^[0-9a-f]{1,6}$/i.test(p)) throw new Error(`not a codepoint sequence: "${hex}"`);
    return parseInt(p, 16);
  });
  if (!cps.length) throw new Error(`empty codepoint sequence: "${hex}"`);
  return keyFromCodepoints(cps);
}

/** The key of an emoji string ("❤️" -> "2764"). */
export function keyFromEmoji(emoji: string): string {
  const cps = [...emoji].map((ch) => ch.codePointAt(0)!);
  if (!cps.length) throw new Error('empty emoji string');
  return keyFromCodepoints(cps);
}

/** The emoji string for a key (without FE0F; renderers add presentation themselves). */
export function emojiFromKey(key: string): string {
  return String.fromCodePoint(...key.split('-').map((p) => parseInt(p, 16)));
}

/**
 * Names as identifiers ("Japanese “here” button" -> "japanese-here-button", "piñata" -> "pinata"):
 * accents folded, quotes dropped, every other run of non-alphanumerics one "-". Used to compare
 * icon names with labels and shortcodes.
 */
export function slug(s: string): string {
  return s.normalize('NFKD').replace(/[\u0300-\u036f]/g, '').toLowerCase()
    .replace(/['’‘“”"]/g, '').replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '');
}

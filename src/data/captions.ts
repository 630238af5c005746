// Caption text for emoji concepts, built from the joined label / tags / keywords. Deterministic, so
// two builds give identical manifests.

/** Typographic punctuation to ASCII (labels say “here” and woman’s); whitespace collapsed. */
export function cleanText(s: string): string {
  return s.replace(/[’‘]/g, "'").replace(/[“”]/g, '"').replace(/[–—]/g, '-').replace(/\s+/g, ' ').trim();
}

/**
 * Keywords for a concept: emojilib's (curated, most relevant first; its first entry is the snake_case
 * name, which repeats the label) then emojibase's tags. Emoticons and numbers (":D", "+1", "12:00")
 * are dropped because they carry no words, as is anything equal to the label or seen before.
 */
export function keywords(label: string, emojilib: readonly string[] | undefined, tags: readonly string[] | undefined): string[] {
  const seen = new Set([cleanText(label).toLowerCase()]);
  const out: string[] = [];
  const add = (w: string) => {
    const t = cleanText(w.replace(/_/g, ' ')).toLowerCase();
    if (!/\p{L}{2,}/u.test(t) || seen.has(t)) return;
    seen.add(t);
    out.push(t);
  };
  (emojilib ?? []).slice(1).forEach(add);
  (tags ?? []).forEach(add);
  return out;
}

export interface CaptionInput {
  label: string;
  keywords: readonly string[];
  groupName: string;
  subgroupName: string;
}

/** How many keywords a caption lists: enough to add meaning, short of CLIP's 77-token limit. */
export const CAPTION_KEYWORDS = 6;

/**
 * Captions in a fixed order: [label, "an emoji of <label>", "<label>: <keywords>", "<label> (<group>, <subgroup>)"];
 * the keyword caption is left out when there are none. Training code picks among them.
 */
export function buildCaptions(c: CaptionInput): string[] {
  const label = cleanText(c.label);
  const out = [label, `an emoji of ${label}`];
  if (c.keywords.length) out.push(`${label}: ${c.keywords.slice(0, CAPTION_KEYWORDS).join(', ')}`);
  out.push(`${label} (${cleanText(c.groupName)}, ${cleanText(c.subgroupName)})`);
  return out;
}

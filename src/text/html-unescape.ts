// A port of the semantics of Python's html.unescape, which OpenAI's SimpleTokenizer applies (twice) to every text.
// Numeric references follow Python exactly. Named references cover a subset of the 2,231-name HTML5 table that
// Python carries: all of HTML 4 (Latin-1, symbols, Greek, specials), the legacy names HTML5 accepts without ';',
// the ASCII punctuation names, and every name that begins with a legacy name (so the longest-prefix rule never
// misfires). 443 of the 2,231 names; any other name is left as written, where Python would decode it.

// Latin-1 names for U+00A0..U+00FF in code point order. HTML5 accepts all of them without a trailing ';'.
const LATIN1 = (
  'nbsp iexcl cent pound curren yen brvbar sect uml copy ordf laquo not shy reg macr ' +
  'deg plusmn sup2 sup3 acute micro para middot cedil sup1 ordm raquo frac14 frac12 frac34 iquest ' +
  'Agrave Aacute Acirc Atilde Auml Aring AElig Ccedil Egrave Eacute Ecirc Euml Igrave Iacute Icirc Iuml ' +
  'ETH Ntilde Ograve Oacute Ocirc Otilde Ouml times Oslash Ugrave Uacute Ucirc Uuml Yacute THORN szlig ' +
  'agrave aacute acirc atilde auml aring aelig ccedil egrave eacute ecirc euml igrave iacute icirc iuml ' +
  'eth ntilde ograve oacute ocirc otilde ouml divide oslash ugrave uacute ucirc uuml yacute thorn yuml'
).split(' ');

// Names HTML5 also accepts without ';' beyond Latin-1.
const LEGACY_ASCII: Record<string, number> = { quot: 34, QUOT: 34, amp: 38, AMP: 38, lt: 60, LT: 60, gt: 62, GT: 62, COPY: 0xa9, REG: 0xae };

// Greek capitals U+0391..U+03A9 (U+03A2 is unassigned) and small letters U+03B1..U+03C9.
const GREEK_UPPER = 'Alpha Beta Gamma Delta Epsilon Zeta Eta Theta Iota Kappa Lambda Mu Nu Xi Omicron Pi Rho - Sigma Tau Upsilon Phi Chi Psi Omega'.split(' ');
const GREEK_LOWER = 'alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigmaf sigma tau upsilon phi chi psi omega'.split(' ');

// The rest of HTML 4's symbols and specials, plus HTML5's ASCII punctuation names (likely in scraped captions).
const OTHER: Record<string, number> = {
  apos: 39, OElig: 338, oelig: 339, Scaron: 352, scaron: 353, Yuml: 376, fnof: 402, circ: 710, tilde: 732,
  thetasym: 977, upsih: 978, piv: 982,
  ensp: 0x2002, emsp: 0x2003, thinsp: 0x2009, zwnj: 0x200c, zwj: 0x200d, lrm: 0x200e, rlm: 0x200f,
  ndash: 0x2013, mdash: 0x2014, lsquo: 0x2018, rsquo: 0x2019, sbquo: 0x201a, ldquo: 0x201c, rdquo: 0x201d,
  bdquo: 0x201e, dagger: 0x2020, Dagger: 0x2021, bull: 0x2022, hellip: 0x2026, permil: 0x2030, prime: 0x2032,
  Prime: 0x2033, lsaquo: 0x2039, rsaquo: 0x203a, oline: 0x203e, frasl: 0x2044, euro: 0x20ac,
  image: 0x2111, weierp: 0x2118, real: 0x211c, trade: 0x2122, alefsym: 0x2135,
  larr: 0x2190, uarr: 0x2191, rarr: 0x2192, darr: 0x2193, harr: 0x2194, crarr: 0x21b5,
  lArr: 0x21d0, uArr: 0x21d1, rArr: 0x21d2, dArr: 0x21d3, hArr: 0x21d4,
  forall: 0x2200, part: 0x2202, exist: 0x2203, empty: 0x2205, nabla: 0x2207, isin: 0x2208, notin: 0x2209,
  ni: 0x220b, prod: 0x220f, sum: 0x2211, minus: 0x2212, lowast: 0x2217, radic: 0x221a, prop: 0x221d,
  infin: 0x221e, ang: 0x2220, and: 0x2227, or: 0x2228, cap: 0x2229, cup: 0x222a, int: 0x222b, there4: 0x2234,
  sim: 0x223c, cong: 0x2245, asymp: 0x2248, ne: 0x2260, equiv: 0x2261, le: 0x2264, ge: 0x2265, sub: 0x2282,
  sup: 0x2283, nsub: 0x2284, sube: 0x2286, supe: 0x2287, oplus: 0x2295, otimes: 0x2297, perp: 0x22a5,
  sdot: 0x22c5, lceil: 0x2308, rceil: 0x2309, lfloor: 0x230a, rfloor: 0x230b,
  // HTML5 remapped these two from U+2329/U+232A to the mathematical angle brackets.
  lang: 0x27e8, rang: 0x27e9,
  loz: 0x25ca, spades: 0x2660, clubs: 0x2663, hearts: 0x2665, diams: 0x2666,
  Tab: 9, NewLine: 10, excl: 33, num: 35, dollar: 36, percnt: 37, lpar: 40, rpar: 41, ast: 42, plus: 43,
  comma: 44, period: 46, sol: 47, colon: 58, semi: 59, equals: 61, quest: 63, commat: 64, lsqb: 91, lbrack: 91,
  bsol: 92, rsqb: 93, rbrack: 93, Hat: 94, lowbar: 95, grave: 96, lcub: 123, lbrace: 123, verbar: 124, vert: 124,
  VerticalLine: 124, rcub: 125, rbrace: 125, hyphen: 0x2010, dash: 0x2010,
};

// Every other HTML5 name that starts with a legacy no-';' name: without them '&ltri;' would decode as '<ri;'
// through the longest-prefix rule, instead of staying as written.
const PREFIXED_BY_LEGACY: Record<string, string> = {
  centerdot: '\u00b7', copysr: '\u2117', divideontimes: '\u22c7', gtcc: '\u2aa7', gtcir: '\u2a7a', gtdot: '\u22d7',
  gtlPar: '\u2995', gtquest: '\u2a7c', gtrapprox: '\u2a86', gtrarr: '\u2978', gtrdot: '\u22d7', gtreqless: '\u22db',
  gtreqqless: '\u2a8c', gtrless: '\u2277', gtrsim: '\u2273', ltcc: '\u2aa6', ltcir: '\u2a79', ltdot: '\u22d6',
  lthree: '\u22cb', ltimes: '\u22c9', ltlarr: '\u2976', ltquest: '\u2a7b', ltri: '\u25c3', ltrie: '\u22b4',
  ltrif: '\u25c2', ltrPar: '\u2996', notindot: '\u22f5\u0338', notinE: '\u22f9\u0338', notinva: '\u2209',
  notinvb: '\u22f7', notinvc: '\u22f6', notni: '\u220c', notniva: '\u220c', notnivb: '\u22fe', notnivc: '\u22fd',
  parallel: '\u2225', timesb: '\u22a0', timesbar: '\u2a31', timesd: '\u2a30',
};

/** name (with its ';' where required) -> replacement, as Python's html.entities.html5 keys them. */
const ENTITIES: Map<string, string> = (() => {
  const m = new Map<string, string>();
  const add = (name: string, cp: number, legacy: boolean) => {
    const s = String.fromCodePoint(cp);
    m.set(name + ';', s);
    if (legacy) m.set(name, s);
  };
  LATIN1.forEach((n, i) => add(n, 0xa0 + i, true));
  for (const [n, cp] of Object.entries(LEGACY_ASCII)) add(n, cp, true);
  GREEK_UPPER.forEach((n, i) => { if (n !== '-') add(n, 0x391 + i, false); });
  GREEK_LOWER.forEach((n, i) => add(n, 0x3b1 + i, false));
  for (const [n, cp] of Object.entries(OTHER)) add(n, cp, false);
  for (const [n, str] of Object.entries(PREFIXED_BY_LEGACY)) m.set(n + ';', str);
  return m;
})();

// Python maps these numeric references to the Windows-1252 characters browsers show (or keep the control char).
const INVALID_CHARREFS: Record<number, string> = {
  0x00: '\ufffd', 0x0d: '\r', 0x80: '\u20ac', 0x81: '\x81', 0x82: '\u201a', 0x83: '\u0192', 0x84: '\u201e',
  0x85: '\u2026', 0x86: '\u2020', 0x87: '\u2021', 0x88: '\u02c6', 0x89: '\u2030', 0x8a: '\u0160', 0x8b: '\u2039',
  0x8c: '\u0152', 0x8d: '\x8d', 0x8e: '\u017d', 0x8f: '\x8f', 0x90: '\x90', 0x91: '\u2018', 0x92: '\u2019',
  0x93: '\u201c', 0x94: '\u201d', 0x95: '\u2022', 0x96: '\u2013', 0x97: '\u2014', 0x98: '\u02dc', 0x99: '\u2122',
  0x9a: '\u0161', 0x9b: '\u203a', 0x9c: '\u0153', 0x9d: '\x9d', 0x9e: '\u017e', 0x9f: '\u0178',
};

// Code points Python drops entirely: C0/C1 controls (except tab, LF, FF, CR), noncharacters.
function isInvalidCodepoint(n: number): boolean {
  return (n >= 0x1 && n <= 0x8) || n === 0xb || (n >= 0xe && n <= 0x1f) || (n >= 0x7f && n <= 0x9f) ||
    (n >= 0xfdd0 && n <= 0xfdef) || (n & 0xfffe) === 0xfffe;
}

// Same alternation as Python's html._charref: decimal, hex, or up to 32 name characters, each with an optional ';'.
const CHARREF = /&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)/g;

function replaceCharref(_m: string, ref: string): string {
  if (ref[0] === '#') {
    const hex = ref[1] === 'x' || ref[1] === 'X';
    const digits = ref.slice(hex ? 2 : 1).replace(/;$/, '');
    // Huge values lose precision here but stay above 0x10FFFF, which is all that matters below.
    const num = parseInt(digits, hex ? 16 : 10);
    const mapped = INVALID_CHARREFS[num];
    if (mapped !== undefined) return mapped;
    if ((num >= 0xd800 && num <= 0xdfff) || num > 0x10ffff) return '\ufffd';
    if (isInvalidCodepoint(num)) return '';
    return String.fromCodePoint(num);
  }
  const whole = ENTITIES.get(ref);
  if (whole !== undefined) return whole;
  // Longest known prefix (only the legacy no-';' names can match), as the HTML5 standard and Python do.
  for (let x = ref.length - 1; x > 1; x--) {
    const hit = ENTITIES.get(ref.slice(0, x));
    if (hit !== undefined) return hit + ref.slice(x);
  }
  return '&' + ref;
}

/** Python's html.unescape (named references: see the subset note at the top of this file). */
export function htmlUnescape(s: string): string {
  if (!s.includes('&')) return s;
  return s.replace(CHARREF, replaceCharref);
}

// Every package the benchmark is built from, pinned. Versions and checksums were read with
// `npm view <name>@<version> dist.integrity` and `apt-cache show <pkg>` (Debian bookworm); a download
// whose checksum differs is rejected, so a rebuild from a clean clone yields the same inputs.
// `members` limits extraction to what the build reads (tar wildcards inside the archive), which keeps
// the cache small and means files we must not use (e.g. other vendors' art) never land on disk.

export interface NpmSource {
  kind: 'npm';
  id: string;
  name: string;
  version: string;
  /** npm's dist.integrity (sha512, base64). */
  integrity: string;
  members: string[];
  license: string;
  use: string;
  /** Only fetched when the optional icon vocabulary is built. */
  optional?: boolean;
}

export interface DebSource {
  kind: 'deb';
  id: string;
  name: string;
  version: string;
  /** SHA256 from the archive's Packages index. */
  sha256: string;
  /** Path in the archive pool, used when `apt-get download` is unavailable. */
  pool: string;
  members: string[];
  license: string;
  use: string;
  optional?: boolean;
}

export type Source = NpmSource | DebSource;

export const DEBIAN_MIRROR = 'https://deb.debian.org/debian';

export const SOURCES: readonly Source[] = [
  {
    kind: 'npm', id: 'google', name: 'emoji-datasource-google', version: '16.0.0',
    integrity: 'sha512-ZRexfzs7MVoLnmzZmNsO4TKhnAJp5D++Vm6PpUpH/jEQQlemp3l88CjZ+DoZ2faM9R4QxZkOPJCoT8DlPhfQ3A==',
    members: ['package/emoji.json', 'package/LICENSE', 'package/img/google/64/*.png'],
    license: 'package MIT; Noto Emoji art Apache-2.0', use: 'train images (Noto)',
  },
  {
    kind: 'npm', id: 'twitter', name: 'emoji-datasource-twitter', version: '16.0.0',
    integrity: 'sha512-7F+uCuHH+7Qnrc15P5tnbvKkg9E6tlzi4MnT2uW1RlN4pLYTza6cP/dstIfSDMtpjFLWuZewWg8jBbuL2eyELQ==',
    members: ['package/emoji.json', 'package/LICENSE', 'package/img/twitter/64/*.png'],
    license: 'package MIT; Twemoji art CC-BY-4.0', use: 'train images (Twemoji)',
  },
  {
    // EmojiOne 2 (the last version whose art is CC-BY-4.0): a third drawing style for training, flat
    // colour, and a black-and-white line-art set of the same concepts. Neither is an evaluation style.
    kind: 'npm', id: 'emojione', name: 'emojione', version: '2.2.7',
    integrity: 'sha512-Gbf8qysc34+TFUS5HPwOUY62v8gjLuPmfVTWUR/zirULSYUe/D3MrvYo0W5Y2gScF1YI7EBe5t81IbD8q144Ag==',
    members: ['package/LICENSE.md', 'package/assets/png/*.png', 'package/assets/svg_bw/*.svg'],
    license: 'package MIT; EmojiOne 2 art CC-BY-4.0', use: 'train images (EmojiOne colour and black-and-white)',
  },
  {
    kind: 'npm', id: 'emojibase', name: 'emojibase-data', version: '17.0.0',
    integrity: 'sha512-Yvgb5AWoHViHV/gq1qr5ZAarcBip+B27/ZLRsUJkbgAEaLlZ/fof9g882LTpmEpyhBNEC0m2SEmItljHsTygjA==',
    members: ['package/LICENSE', 'package/en/data.json', 'package/en/messages.json', 'package/en/shortcodes/*.json', 'package/meta/groups.json'],
    license: 'MIT', use: 'concept table: labels, tags, groups, shortcodes',
  },
  {
    kind: 'npm', id: 'emojilib', name: 'emojilib', version: '4.0.3',
    integrity: 'sha512-KbWiYre9aRSaPbHrHZIz9zmoM+21LAsK1VFJtnTh1VCtWE/rNMDviGhQTmselFl95dhqtGlY22iH0leG5BuW0g==',
    members: ['package/LICENSE', 'package/dist/*.json'],
    license: 'MIT', use: 'caption keywords',
  },
  {
    kind: 'npm', id: 'openmoji', name: 'openmoji', version: '17.0.0',
    integrity: 'sha512-EBnYrNGdcdw+OSXmENeNE1yBNRu6tOraTmoOyUbJkTmvT/+XETp8RZLSJFzD3lrPc5N9CzsyPnRTk0Vp4UaI9w==',
    members: ['package/LICENSE*', 'package/data/openmoji.json', 'package/color/svg/*.svg'],
    license: 'CC-BY-SA-4.0', use: 'zero-shot style (OpenMoji)',
  },
  {
    kind: 'npm', id: 'fluent', name: '@iconify-json/fluent-emoji-flat', version: '1.2.6',
    integrity: 'sha512-RY47RgPb47fYUiyrA64sIOL0+UU02s29sXpNBbIQRBUlPlfNFTKUmZDERGuxDs/7yNGWqQYvuaSYM1M4fRXlUw==',
    members: ['package/icons.json', 'package/chars.json', 'package/info.json'],
    license: 'MIT', use: 'zero-shot style (Fluent Emoji Flat)',
  },
  {
    kind: 'npm', id: 'tabler', name: '@tabler/icons', version: '3.51.0',
    integrity: 'sha512-0pinvPZz7YeX+OSfxuEAbnEPWbocVXW5iU8h5lh41pYG8sZuQfpWECC980lxOT0clGIcNGn8xsBr+zKaRGdA/g==',
    members: ['package/LICENSE', 'package/icons.json', 'package/icons/outline/*.svg', 'package/icons/filled/*.svg'],
    license: 'MIT', use: 'extra vocabulary (icons)', optional: true,
  },
  {
    kind: 'npm', id: 'mdi', name: '@mdi/svg', version: '7.4.47',
    integrity: 'sha512-WQ2gDll12T9WD34fdRFgQVgO8bag3gavrAgJ0frN4phlwdJARpE6gO1YvLEMJR0KKgoc+/Ea/A0Pp11I00xBvw==',
    members: ['package/LICENSE', 'package/meta.json', 'package/svg/*.svg'],
    license: 'Apache-2.0', use: 'extra vocabulary (icons)', optional: true,
  },
  {
    // Clip art in many hands with titles and keywords: optional training data of Tux Paint's kind (its
    // near-duplicates of Tux Paint stamps are dropped by pixels, see openclipart.ts).
    kind: 'deb', id: 'openclipart', name: 'openclipart-svg', version: '1:0.18+dfsg-19',
    sha256: '989712d90d57dfa3230049f553bb43b76c30ee4d4b8c5f6e106e33f7db5cbdc5',
    pool: 'pool/main/o/openclipart/openclipart-svg_0.18+dfsg-19_all.deb',
    members: ['./usr/share/openclipart/svg/*', './usr/share/doc/openclipart-svg/copyright'],
    license: 'public domain (Open Clip Art Library)', use: 'extra training drawings (clip art)', optional: true,
  },
  {
    kind: 'deb', id: 'tuxpaint', name: 'tuxpaint-stamps-default', version: '2022.06.04-1',
    sha256: '6db6c1bfc870a47f1499d6203b083522eacb57c5f9c87d468f2e92eb6d9d5f34',
    pool: 'pool/main/t/tuxpaint-stamps/tuxpaint-stamps-default_2022.06.04-1_all.deb',
    // Descriptions and images only; the package is mostly sound files.
    members: ['./usr/share/tuxpaint/stamps/*.txt', './usr/share/tuxpaint/stamps/*.png', './usr/share/tuxpaint/stamps/*.svg', './usr/share/doc/tuxpaint-stamps-default/copyright'],
    license: 'GPL-2+', use: 'retrieval with human-written captions',
  },
  {
    kind: 'deb', id: 'fashion-mnist', name: 'dataset-fashion-mnist', version: '0.0~git20200523.55506a9-1',
    sha256: '39e172fe32dd318ebb3e512220c3beea2fa47d7e20bab348fb4e0922d6beefc0',
    pool: 'pool/main/d/dataset-fashion-mnist/dataset-fashion-mnist_0.0~git20200523.55506a9-1_all.deb',
    members: ['./usr/share/datasets/fashion-mnist/t10k-*', './usr/share/datasets/fashion-mnist/train-*', './usr/share/doc/dataset-fashion-mnist/copyright'],
    license: 'MIT', use: 'photo-domain stress test (test split); linear probe (train and test splits)',
  },
];

export function source(id: string): Source {
  const s = SOURCES.find((x) => x.id === id);
  if (!s) throw new Error(`unknown data source "${id}"`);
  return s;
}

// Fashion-MNIST classes mapped to emoji concepts, for testing emoji-trained models on (gray, 28 px)
// product photos. A class is mapped only when one emoji depicts it as such:
//   Pullover (2) — no emoji; 🧥 is the coat and 👕 the T-shirt, both already taken.
//   Shirt (6)    — left out: 👔 is drawn as a shirt, but its concept (label, tags, Unicode name) is
//                  "necktie", so a correct prediction would read as "necktie"; and 👕 is T-shirt's.
//   Sandal (5) → 👡 "woman's sandal" (not 🩴 thong sandal: the class has strappy and heeled sandals).
//   Ankle boot (9) → 👢 "woman's boot", the only boot emoji besides 🥾 hiking boot.
//   Bag (8) → 👜 handbag (the class is mostly handbags; 👝 clutch and 🛍️ shopping bags are narrower).
// So the stress test is 8-way, 1,000 images per class in the test split.

export interface FashionClass {
  index: number;
  name: string;
  /** Concept key (keys.ts) or null when the class is left out. */
  key: string | null;
}

export const FASHION_CLASSES: readonly FashionClass[] = [
  { index: 0, name: 'T-shirt/top', key: '1f455' }, // 👕 t-shirt
  { index: 1, name: 'Trouser', key: '1f456' }, // 👖 jeans
  { index: 2, name: 'Pullover', key: null },
  { index: 3, name: 'Dress', key: '1f457' }, // 👗 dress
  { index: 4, name: 'Coat', key: '1f9e5' }, // 🧥 coat
  { index: 5, name: 'Sandal', key: '1f461' }, // 👡 woman's sandal
  { index: 6, name: 'Shirt', key: null },
  { index: 7, name: 'Sneaker', key: '1f45f' }, // 👟 running shoe
  { index: 8, name: 'Bag', key: '1f45c' }, // 👜 handbag
  { index: 9, name: 'Ankle boot', key: '1f462' }, // 👢 woman's boot
];

# Reference goldens for a tiny SigLIP 2 fixed-resolution checkpoint (test/goldens/siglip2-tiny): the SiglipModel
# layout google/siglip2-*-patch16-224 etc. ship (config model_type "siglip"), with Gemma's tokenizer: a
# sentencepiece BPE model with byte fallback, converted to tokenizer.json as transformers' GemmaConverter does,
# used as GemmaTokenizerFast(add_bos_token=False, add_eos_token=True) (convert_siglip2_to_hf.py), texts
# lower-cased (the model was trained on lower-cased text: transformers' siglip2 docs, Siglip2Tokenizer), padded
# with <pad> to 64. The towers reuse scripts/goldens/siglip.py's plain-PyTorch port (checked there against
# hf-clip-tiny); run with /usr/bin/python3 (PyTorch, numpy, sentencepiece, Pillow).
import json
import os
import sys

import numpy as np
import sentencepiece as spm
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_np as st  # noqa: E402
import siglip as port  # noqa: E402

OUT = os.path.join(port.ROOT, "test", "goldens", "siglip2-tiny")
CONTEXT = 64

CORPUS_EXTRA = """a photo of a cat. a photo of a dog! a picture of an astronaut in space, a cup of coffee on a table;
фотография кошки и собаки. космонавт в космосе. чашка кофе на столе.
一只猫的照片。一只狗的照片。太空中的宇航员。
the quick brown fox jumps over the lazy dog: 2 cats and 3 dogs in 2024 (really?)
"""


def train_spm(prefix, vocab_size):
    """A BPE model trained the way Gemma's is configured: byte fallback, digits split, no dummy prefix,
    identity normalization, whitespace kept as is; ids 0-3 are <pad> <eos> <bos> <unk>."""
    text = prefix + ".txt"
    lines = [l.strip() for l in CORPUS_EXTRA.splitlines() if l.strip()] + port.corpus_lines()
    with open(text, "w") as f:
        for l in lines:
            f.write(l.lower() + "\n")
    spm.SentencePieceTrainer.train(
        input=text, model_prefix=prefix, model_type="bpe", vocab_size=vocab_size,
        pad_id=0, eos_id=1, bos_id=2, unk_id=3, pad_piece="<pad>", eos_piece="<eos>", bos_piece="<bos>", unk_piece="<unk>",
        byte_fallback=True, split_digits=True, add_dummy_prefix=False, remove_extra_whitespaces=False,
        normalization_rule_name="identity", allow_whitespace_only_pieces=True, character_coverage=1.0,
        num_threads=1, minloglevel=2)
    os.remove(text)


def generate_merges(vocab, vocab_scores):
    """convert_slow_tokenizer.generate_merges with scores: every split of a piece into two vocabulary
    pieces, ordered by the piece's score (then the parts' lengths), highest first."""
    merges = []
    for merge, piece_score in vocab_scores.items():
        local = []
        for index in range(1, len(merge)):
            l, r = merge[:index], merge[index:]
            if l in vocab and r in vocab:
                local.append((l, r, piece_score))
        local = sorted(local, key=lambda x: (vocab[x[0]], vocab[x[1]]))
        merges.extend(local)
    merges = sorted(merges, key=lambda v: (v[2], len(v[0]), len(v[1])), reverse=True)
    return [(v[0], v[1]) for v in merges]


def gemma_tokenizer_json(model_file):
    """GemmaConverter (SpmConverter, model_type BPE, handle_byte_fallback) + GemmaTokenizerFast's
    post-processor for add_bos_token=False, add_eos_token=True."""
    sp = spm.SentencePieceProcessor(model_file=model_file)
    n = sp.get_piece_size()
    # GemmaConverter.vocab: pad, eos, bos by name with score 0, then the pieces from id 3 as stored.
    vocab_scores = [("<pad>", 0.0), ("<eos>", 0.0), ("<bos>", 0.0)] + [(sp.id_to_piece(i), float(sp.get_score(i))) for i in range(3, n)]
    # Older Gemma models lack a tab piece: the <0x09> byte piece is renamed "\t" (score 0).
    if not any(p == "\t" for p, _ in vocab_scores):
        k = next((i for i, (p, _) in enumerate(vocab_scores) if p == "<0x09>"), None)
        if k is not None:
            vocab_scores[k] = ("\t", 0.0)
    # GemmaSentencePieceExtractor.extract: the vocabulary by the processor's pieces, "\t" -> <0x09>'s id when
    # missing, merges ordered by the converter's scores.
    vocab = {sp.id_to_piece(i): i for i in range(n)}
    if "\t" not in vocab:
        vocab["\t"] = vocab.get("<0x09>")
    merges = generate_merges(vocab, dict(vocab_scores))
    bpe_vocab = {p: i for i, (p, _) in enumerate(vocab_scores)}
    special = [{"id": i, "content": p, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True}
               for i, p in enumerate(["<pad>", "<eos>", "<bos>", "<unk>"])]
    return {
        "version": "1.0",
        # As google/siglip2-* ship it: fixed 64-token padding with <pad> and truncation saved in the file.
        "truncation": {"direction": "Right", "max_length": CONTEXT, "strategy": "LongestFirst", "stride": 0},
        "padding": {"strategy": {"Fixed": CONTEXT}, "direction": "Right", "pad_to_multiple_of": None,
                    "pad_id": 0, "pad_type_id": 0, "pad_token": "<pad>"},
        "added_tokens": special,
        "normalizer": {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"},
        "pre_tokenizer": {"type": "Split", "pattern": {"String": " "}, "behavior": "MergedWithPrevious", "invert": False},
        "post_processor": {"type": "TemplateProcessing",
                           "single": [{"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "<eos>", "type_id": 0}}],
                           "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "<eos>", "type_id": 0}},
                                    {"Sequence": {"id": "B", "type_id": 1}}, {"SpecialToken": {"id": "<eos>", "type_id": 1}}],
                           "special_tokens": {"<eos>": {"id": "<eos>", "ids": [1], "tokens": ["<eos>"]}}},
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
                  "vocab": bpe_vocab, "merges": [[a, b] for a, b in merges]},
    }


class Siglip2TextPort:
    """SigLIP 2's text rules on the sentencepiece model: lower-case, the pieces as GemmaTokenizer encodes
    them (no dummy prefix), <eos> appended (add_eos_token), truncation to 64 keeping the <eos>, <pad> to 64."""

    def __init__(self, model_file):
        self.sp = spm.SentencePieceProcessor(model_file=model_file)
        self.eos = self.sp.piece_to_id("<eos>")
        self.pad = self.sp.piece_to_id("<pad>")

    def pieces(self, text):
        return self.sp.encode(text.lower(), out_type=str)

    def encode(self, text):
        ids = self.sp.encode(text.lower())[: CONTEXT - 1] + [self.eos]
        return ids + [self.pad] * (CONTEXT - len(ids))


TEXTS = [
    "a photo of an astronaut",
    "a photo of a cat",
    "A Cup of COFFEE",
    "a rocket on the launch pad",
    "a black-and-white photo of a horse! (1984)",
    "  two   cats,\tthree dogs... and 2024 birds?  ",
    "фотография кошки",
    "一只猫的照片",
    "café naïve ßtraße 🐱🚀 ok",
    "",
    "a very long caption " + "with many words " * 20,
]


def main():
    os.makedirs(OUT, exist_ok=True)
    worst_clip = port.prove_on_clip()

    prefix = os.path.join(OUT, "tokenizer")
    train_spm(prefix, 700)
    os.remove(prefix + ".vocab")
    tok = Siglip2TextPort(prefix + ".model")
    V = tok.sp.get_piece_size()
    tj = gemma_tokenizer_json(prefix + ".model")
    assert len(tj["model"]["vocab"]) == V

    cfg = {
        "architectures": ["SiglipModel"], "model_type": "siglip", "initializer_factor": 1.0,
        "text_config": {"model_type": "siglip_text_model", "hidden_size": 32, "intermediate_size": 48,
                        "num_hidden_layers": 2, "num_attention_heads": 2, "vocab_size": V, "max_position_embeddings": CONTEXT,
                        "hidden_act": "gelu_pytorch_tanh", "layer_norm_eps": 1e-6, "attention_dropout": 0.0,
                        "pad_token_id": 0, "bos_token_id": 2, "eos_token_id": 1, "projection_size": 32},
        "vision_config": {"model_type": "siglip_vision_model", "hidden_size": 32, "intermediate_size": 64,
                          "num_hidden_layers": 2, "num_attention_heads": 4, "num_channels": 3, "image_size": 32,
                          "patch_size": 8, "hidden_act": "gelu_pytorch_tanh", "layer_norm_eps": 1e-6, "attention_dropout": 0.0},
    }
    json.dump(cfg, open(os.path.join(OUT, "config.json"), "w"), indent=1)
    json.dump({"image_processor_type": "SiglipImageProcessorPil", "processor_class": "SiglipProcessor",
               "do_resize": True, "size": {"height": 32, "width": 32}, "resample": 2,
               "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
               "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5], "do_convert_rgb": None},
              open(os.path.join(OUT, "preprocessor_config.json"), "w"), indent=1)
    json.dump(tj, open(os.path.join(OUT, "tokenizer.json"), "w"), ensure_ascii=False)
    json.dump({"tokenizer_class": "GemmaTokenizer", "processor_class": "SiglipProcessor",
               "add_bos_token": False, "add_eos_token": True, "padding_side": "right",
               "model_max_length": 1000000000000000019884624838656, "model_input_names": ["input_ids"],
               "pad_token": "<pad>", "eos_token": "<eos>", "bos_token": "<bos>", "unk_token": "<unk>"},
              open(os.path.join(OUT, "tokenizer_config.json"), "w"), indent=1)

    W = port.make_weights(cfg, seed=1)
    st.write(os.path.join(OUT, "model.safetensors"), {k: v.numpy() for k, v in W.items()}, {"format": "pt"})

    ids = torch.tensor([tok.encode(t) for t in TEXTS], dtype=torch.int64)
    px, _ = zip(*(port.pil_pixels(os.path.join(port.FIX, "common", "images", p), cfg["vision_config"]["image_size"]) for p in port.PHOTOS))
    pixels = torch.from_numpy(np.stack(px))
    with torch.no_grad():
        img = port.siglip_image(W, cfg, pixels)
        txt = port.siglip_text(W, cfg, ids)
        lpi, _ = port.siglip_logits(W, img, txt)
        # SiglipModel's sigmoid loss of the first len(PHOTOS) texts with the photos: a training run's first step.
        n = len(port.PHOTOS)
        loss = port.siglip_loss(port.siglip_logits(W, img, txt[:n])[1])
    st.write(os.path.join(OUT, "golden.safetensors"), {
        "input_ids": ids.numpy(), "pixel_values": pixels.numpy(),
        "image_features": img.numpy(), "text_features": txt.numpy(),
        "logits_per_image": lpi.numpy(), "probs": torch.sigmoid(lpi).numpy(),
    })
    json.dump({
        "texts": TEXTS, "photos": port.PHOTOS,
        "text_rules": "lower-case; sentencepiece BPE with byte fallback (no dummy prefix); <eos> (id 1) appended; truncation to 63 + <eos>; padded to 64 with <pad> (id 0)",
        "pieces": [tok.pieces(t) for t in TEXTS[:10]],
        "sigmoid_loss_first_texts": loss.item(),
        "port_check_vs_hf_clip_tiny": worst_clip,
    }, open(os.path.join(OUT, "golden.json"), "w"), indent=1, ensure_ascii=False)
    for t in TEXTS[:10]:
        print(repr(t), tok.pieces(t))
    print("probs", torch.sigmoid(lpi).numpy().round(4))


if __name__ == "__main__":
    main()

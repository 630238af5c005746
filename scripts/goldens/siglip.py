#!/usr/bin/python3
"""Tiny random SigLIP checkpoint + goldens for clip-ts (test/goldens/siglip-tiny/).

Route: a plain-PyTorch port of transformers' models/siglip/modeling_siglip.py (SiglipModel: vision
embeddings without class token, encoder, post_layernorm, multihead attention pooling head; text
embeddings, encoder without causal mask, final_layer_norm, pooled at the last position, head Linear;
logits = text_n @ image_n.T * exp(logit_scale) + logit_bias) and of tokenization_siglip.py
(SiglipTokenizer on a sentencepiece Unigram model). No transformers package is available here, so the
port's shared parts (encoder layer, attention, LayerNorm, embeddings) are first checked against the
published hf-clip-tiny golden (transformers' CLIPModel) in ../shared/fixtures.

Run with Debian's interpreter (torch 1.13, numpy, sentencepiece, Pillow):
    /usr/bin/python3 scripts/goldens/siglip.py
"""
import json
import math
import os
import re
import string
import sys

import numpy as np
import sentencepiece as spm
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_np as st  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIX = os.environ.get("CLIP_FIXTURES", os.path.join(os.path.dirname(ROOT), "shared", "fixtures"))
OUT = os.path.join(ROOT, "test", "goldens", "siglip-tiny")

# ---------------------------------------------------------------------------------------------
# The port. W maps HF key names to torch tensors.
def act(x, name):
    if name == "quick_gelu":
        return x * torch.sigmoid(1.702 * x)
    if name in ("gelu_pytorch_tanh", "gelu_new"):
        return F.gelu(x, approximate="tanh")
    if name == "gelu":
        return F.gelu(x)
    raise ValueError(name)


def ln(x, W, p, eps):
    return F.layer_norm(x, (x.shape[-1],), W[p + ".weight"], W[p + ".bias"], eps)


def lin(x, W, p):
    return F.linear(x, W[p + ".weight"], W.get(p + ".bias"))


def attention(x, W, p, heads, mask=None):
    """SiglipAttention / CLIPAttention: q, k, v projections, scaled softmax, out_proj."""
    B, T, D = x.shape
    hd = D // heads
    q = lin(x, W, p + ".q_proj").view(B, T, heads, hd).transpose(1, 2)
    k = lin(x, W, p + ".k_proj").view(B, T, heads, hd).transpose(1, 2)
    v = lin(x, W, p + ".v_proj").view(B, T, heads, hd).transpose(1, 2)
    s = torch.matmul(q, k.transpose(2, 3)) * hd ** -0.5
    if mask is not None:
        s = s + mask
    pr = torch.softmax(s, dim=-1)
    o = torch.matmul(pr, v).transpose(1, 2).reshape(B, T, D)
    return lin(o, W, p + ".out_proj")


def encoder(x, W, p, cfg, mask=None):
    """SiglipEncoder (= CLIPEncoder): pre-LN blocks layer_norm1 / self_attn / layer_norm2 / mlp."""
    eps = cfg.get("layer_norm_eps", 1e-6)
    for i in range(cfg["num_hidden_layers"]):
        q = f"{p}.layers.{i}"
        r = x
        x = r + attention(ln(x, W, q + ".layer_norm1", eps), W, q + ".self_attn", cfg["num_attention_heads"], mask)
        r = x
        h = ln(x, W, q + ".layer_norm2", eps)
        x = r + lin(act(lin(h, W, q + ".mlp.fc1"), cfg["hidden_act"]), W, q + ".mlp.fc2")
    return x


# --- CLIP (only to prove the shared pieces against the published golden) ---
def clip_image(W, cfg, pixels):
    v = cfg["vision_config"]
    eps = v.get("layer_norm_eps", 1e-5)
    pe = F.conv2d(pixels, W["vision_model.embeddings.patch_embedding.weight"], stride=v["patch_size"])
    pe = pe.flatten(2).transpose(1, 2)
    cls = W["vision_model.embeddings.class_embedding"].expand(pixels.shape[0], 1, -1)
    x = torch.cat([cls, pe], 1) + W["vision_model.embeddings.position_embedding.weight"]
    x = ln(x, W, "vision_model.pre_layrnorm", eps)
    x = encoder(x, W, "vision_model.encoder", v)
    pooled = ln(x[:, 0], W, "vision_model.post_layernorm", eps)
    return F.linear(pooled, W["visual_projection.weight"])


def clip_text(W, cfg, ids, mask):
    t = cfg["text_config"]
    eps = t.get("layer_norm_eps", 1e-5)
    T = ids.shape[1]
    x = W["text_model.embeddings.token_embedding.weight"][ids] + W["text_model.embeddings.position_embedding.weight"][:T]
    causal = torch.full((T, T), float("-inf")).triu(1)
    pad = (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
    x = encoder(x, W, "text_model.encoder", t, causal[None, None] + pad)
    x = ln(x, W, "text_model.final_layer_norm", eps)
    eos = t["eos_token_id"]
    pos = ids.argmax(-1) if eos == 2 else (ids == eos).int().argmax(-1)
    return F.linear(x[torch.arange(ids.shape[0]), pos], W["text_projection.weight"])


# --- SigLIP ---
def siglip_image(W, cfg, pixels, hidden=None):
    v = cfg["vision_config"]
    eps = v["layer_norm_eps"]
    # SiglipVisionEmbeddings: patch conv (with bias), no class token, one position per patch.
    pe = F.conv2d(pixels, W["vision_model.embeddings.patch_embedding.weight"], W["vision_model.embeddings.patch_embedding.bias"], stride=v["patch_size"])
    x = pe.flatten(2).transpose(1, 2) + W["vision_model.embeddings.position_embedding.weight"]
    x = encoder(x, W, "vision_model.encoder", v)
    x = ln(x, W, "vision_model.post_layernorm", eps)
    if hidden is not None:
        hidden["vision_last_hidden_state"] = x
    # SiglipMultiheadAttentionPoolingHead: the probe attends over the sequence (nn.MultiheadAttention).
    h = "vision_model.head"
    B, D = x.shape[0], x.shape[2]
    probe = W[h + ".probe"].repeat(B, 1, 1)
    a, _ = F.multi_head_attention_forward(
        probe.transpose(0, 1), x.transpose(0, 1), x.transpose(0, 1), D, v["num_attention_heads"],
        W[h + ".attention.in_proj_weight"], W[h + ".attention.in_proj_bias"], None, None, False, 0.0,
        W[h + ".attention.out_proj.weight"], W[h + ".attention.out_proj.bias"], training=False, need_weights=False)
    a = a.transpose(0, 1)
    r = a
    a = ln(a, W, h + ".layernorm", eps)
    a = r + lin(act(lin(a, W, h + ".mlp.fc1"), v["hidden_act"]), W, h + ".mlp.fc2")
    return a[:, 0]


def siglip_text(W, cfg, ids):
    t = cfg["text_config"]
    T = ids.shape[1]
    x = W["text_model.embeddings.token_embedding.weight"][ids] + W["text_model.embeddings.position_embedding.weight"][:T]
    # No causal mask, and SiglipModel is called without an attention mask (padding="max_length").
    x = encoder(x, W, "text_model.encoder", t)
    x = ln(x, W, "text_model.final_layer_norm", t["layer_norm_eps"])
    return lin(x[:, -1, :], W, "text_model.head")


def siglip_logits(W, img, txt):
    i = img / img.norm(p=2, dim=-1, keepdim=True)
    t = txt / txt.norm(p=2, dim=-1, keepdim=True)
    logits_per_text = torch.matmul(t, i.t()) * W["logit_scale"].exp() + W["logit_bias"]
    return logits_per_text.t(), logits_per_text


def siglip_loss(logits_per_text):
    """SiglipModel's loss: -sum over pairs of log sigmoid(z * logit), z = +1 on the diagonal, / batch."""
    n = logits_per_text.size(0)
    eye = torch.eye(n)
    m1_diag1 = -torch.ones_like(logits_per_text) + 2 * eye
    loglik = F.logsigmoid(m1_diag1 * logits_per_text)
    nll = -torch.sum(loglik, dim=-1)
    return nll.mean()


# ---------------------------------------------------------------------------------------------
def prove_on_clip():
    d = os.path.join(FIX, "hf-clip-tiny")
    cfg = json.load(open(os.path.join(d, "config.json")))
    W = {k: torch.from_numpy(v.astype(np.float32)) for k, v in st.read(os.path.join(d, "model.safetensors")).items()}
    G = st.read(os.path.join(d, "golden.safetensors"))
    with torch.no_grad():
        img = clip_image(W, cfg, torch.from_numpy(G["pixel_values"].astype(np.float32)))
        txt = clip_text(W, cfg, torch.from_numpy(G["input_ids"].astype(np.int64)), torch.from_numpy(G["attention_mask"].astype(np.int64)))
    di = np.abs(img.numpy() - G["image_features"]).max()
    dt = np.abs(txt.numpy() - G["text_features"]).max()
    print(f"port vs hf-clip-tiny golden: image_features {di:.2e}, text_features {dt:.2e}")
    assert di < 1e-5 and dt < 1e-5, "the port does not reproduce transformers' CLIPModel"
    return float(max(di, dt))


# ---------------------------------------------------------------------------------------------
# Tokenizer: a tiny sentencepiece Unigram model, SiglipTokenizer's rules on top.
CORPUS_EXTRA = """a photo of a cat. a photo of a dog! a picture of an astronaut in space, a cup of coffee on a table;
a rocket on the launch pad? a black and white photo of a horse. a chinese temple with red roofs and a flower garden.
the quick brown fox jumps over the lazy dog. photos of cats and dogs, birds, planes, trains and cars.
there are 2 cats and 3 dogs in the picture taken in 2024. an image of a diagram showing text and images.
"""


def corpus_lines():
    lines = [l.strip() for l in CORPUS_EXTRA.splitlines() if l.strip()]
    zs = json.load(open(os.path.join(FIX, "common", "zeroshot-prompts.json")))

    def walk(o):
        if isinstance(o, str):
            lines.append(o.replace("{}", "object"))
        elif isinstance(o, list):
            for x in o:
                walk(x)
        elif isinstance(o, dict):
            for x in o.values():
                walk(x)
    walk(zs)
    return lines


def train_spm(prefix, vocab_size):
    text = prefix + ".txt"
    with open(text, "w") as f:
        for l in corpus_lines():
            # SigLIP's tokenizer lower-cases and drops punctuation before sentencepiece sees the text.
            # The model is trained with add_dummy_prefix off (as SiglipTokenizer loads it), so each line gets
            # the word-start mark it would get from SiglipTokenizer.tokenize.
            f.write("\u2581" + re.sub(r"\s+", " ", l.lower().translate(str.maketrans("", "", string.punctuation))).strip() + "\n")
    spm.SentencePieceTrainer.train(
        input=text, model_prefix=prefix, model_type="unigram", vocab_size=vocab_size,
        pad_id=0, eos_id=1, unk_id=2, bos_id=-1, pad_piece="<pad>", eos_piece="</s>", unk_piece="<unk>",
        character_coverage=1.0, add_dummy_prefix=False, num_threads=1, seed_sentencepiece_size=100000,
        minloglevel=2)
    os.remove(text)


class SiglipTokenizerPort:
    """tokenization_siglip.py's SiglipTokenizer (do_lower_case=True, add_dummy_prefix off) on sentencepiece."""

    def __init__(self, model_file):
        self.sp = spm.SentencePieceProcessor(model_file=model_file)
        self.unk_token = "<unk>"
        self.eos_id = self.sp.piece_to_id("</s>")
        self.unk_token_length = len(self.sp.encode(self.unk_token, out_type=str))

    def canonicalize_text(self, text):
        text = text.translate(str.maketrans("", "", string.punctuation))
        text = re.sub(r"\s+", " ", text)
        return text.strip()

    def tokenize(self, text):
        # PreTrainedTokenizer.tokenize lower-cases (do_lower_case), then SiglipTokenizer.tokenize prefixes "▁".
        text = "\u2581" + text.replace("\u2581", " ")
        text = text.lower()
        text = self.canonicalize_text(text)
        tokens = self.sp.encode(self.unk_token + text, out_type=str)
        tokens = tokens[self.unk_token_length:] if len(tokens) >= self.unk_token_length else tokens
        return tokens

    def encode(self, text, max_length=64):
        ids = [self.sp.piece_to_id(t) for t in self.tokenize(text)]
        # padding="max_length", truncation=True, max_length=64 (transformers' zero-shot pipeline for siglip)
        ids = ids[: max_length - 1] + [self.eos_id]
        return ids + [self.eos_id] * (max_length - len(ids))  # pad_token is </s>


def tokenizer_json(model_file):
    """tokenizer.json for @huggingface/tokenizers: Unigram with the sentencepiece scores, normalizers
    that do SiglipTokenizer's lower-casing, punctuation removal and whitespace canonicalization, a "▁"
    prepended as SiglipTokenizer.tokenize does, NFKC as sentencepiece's nmt_nfkc rule, and </s> appended."""
    sp = spm.SentencePieceProcessor(model_file=model_file)
    vocab = [[sp.id_to_piece(i), 0.0 if sp.is_control(i) or sp.is_unknown(i) else float(sp.get_score(i))] for i in range(sp.get_piece_size())]
    punct = "[" + re.escape(string.punctuation) + "]"
    eos = sp.piece_to_id("</s>")
    special = [{"id": i, "content": sp.id_to_piece(i), "single_word": False, "lstrip": False, "rstrip": False,
                "normalized": False, "special": True} for i in (sp.piece_to_id("<pad>"), eos, sp.piece_to_id("<unk>"))]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": special,
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
            {"type": "Lowercase"},
            {"type": "Replace", "pattern": {"Regex": punct}, "content": ""},
            {"type": "Replace", "pattern": {"Regex": "\\s+"}, "content": " "},
            {"type": "Strip", "strip_left": True, "strip_right": True},
            {"type": "Prepend", "prepend": "\u2581"},
            {"type": "NFKC"},
        ]},
        "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "never", "split": False},
        "post_processor": {"type": "TemplateProcessing",
                           "single": [{"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "</s>", "type_id": 0}}],
                           "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "</s>", "type_id": 0}},
                                    {"Sequence": {"id": "B", "type_id": 0}}, {"SpecialToken": {"id": "</s>", "type_id": 0}}],
                           "special_tokens": {"</s>": {"id": "</s>", "ids": [eos], "tokens": ["</s>"]}}},
        "decoder": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": True},
        "model": {"type": "Unigram", "unk_id": sp.piece_to_id("<unk>"), "vocab": vocab, "byte_fallback": False},
    }


TEXTS = [
    "a photo of an astronaut",
    "a photo of a cat",
    "a cup of coffee",
    "a rocket on the launch pad",
    "A Black-and-White photo of a HORSE!",
    "a chinese temple",
    "  two   cats, three dogs... and 2024 birds?  ",
    "! leading punctuation, \u2581marks and ＦＵＬＬＷＩＤＴＨ",
    "",
    "zebra quokka",  # words the tiny vocabulary spells letter by letter
    "a very long caption " + "with many words " * 20,
]
PHOTOS = ["astronaut.png", "chelsea.png", "coffee.png", "rocket.png"]


def pil_pixels(path, size):
    """SiglipImageProcessor (PIL backend): convert RGB, resize to (size, size) BILINEAR, no crop,
    rescale 1/255, normalize mean = std = 0.5."""
    im = Image.open(path).convert("RGB").resize((size, size), Image.BILINEAR)
    u8 = np.asarray(im)
    x = (u8.astype(np.float64) * (1 / 255) - 0.5) / 0.5
    return x.transpose(2, 0, 1).astype(np.float32), u8


def make_weights(cfg, seed=0):
    g = torch.Generator().manual_seed(seed)
    v, t = cfg["vision_config"], cfg["text_config"]
    W = {}

    def rnd(name, *shape, std=0.2, mean=0.0):
        W[name] = (torch.randn(*shape, generator=g) * std + mean).float()

    def block(p, c):
        D, M = c["hidden_size"], c["intermediate_size"]
        for i in range(c["num_hidden_layers"]):
            q = f"{p}.layers.{i}"
            for n in ("layer_norm1", "layer_norm2"):
                rnd(f"{q}.{n}.weight", D, std=0.1, mean=1.0)
                rnd(f"{q}.{n}.bias", D, std=0.1)
            for n in ("q_proj", "k_proj", "v_proj", "out_proj"):
                rnd(f"{q}.self_attn.{n}.weight", D, D, std=D ** -0.5)
                rnd(f"{q}.self_attn.{n}.bias", D, std=0.1)
            rnd(f"{q}.mlp.fc1.weight", M, D, std=D ** -0.5)
            rnd(f"{q}.mlp.fc1.bias", M, std=0.1)
            rnd(f"{q}.mlp.fc2.weight", D, M, std=M ** -0.5)
            rnd(f"{q}.mlp.fc2.bias", D, std=0.1)

    D, P = v["hidden_size"], v["patch_size"]
    n = (v["image_size"] // P) ** 2
    rnd("vision_model.embeddings.patch_embedding.weight", D, 3, P, P, std=(3 * P * P) ** -0.5)
    rnd("vision_model.embeddings.patch_embedding.bias", D, std=0.1)
    rnd("vision_model.embeddings.position_embedding.weight", n, D, std=0.5)
    block("vision_model.encoder", v)
    rnd("vision_model.post_layernorm.weight", D, std=0.1, mean=1.0)
    rnd("vision_model.post_layernorm.bias", D, std=0.1)
    h = "vision_model.head"
    rnd(h + ".probe", 1, 1, D, std=1.0)
    rnd(h + ".attention.in_proj_weight", 3 * D, D, std=D ** -0.5)
    rnd(h + ".attention.in_proj_bias", 3 * D, std=0.1)
    rnd(h + ".attention.out_proj.weight", D, D, std=D ** -0.5)
    rnd(h + ".attention.out_proj.bias", D, std=0.1)
    rnd(h + ".layernorm.weight", D, std=0.1, mean=1.0)
    rnd(h + ".layernorm.bias", D, std=0.1)
    M = v["intermediate_size"]
    rnd(h + ".mlp.fc1.weight", M, D, std=D ** -0.5)
    rnd(h + ".mlp.fc1.bias", M, std=0.1)
    rnd(h + ".mlp.fc2.weight", D, M, std=M ** -0.5)
    rnd(h + ".mlp.fc2.bias", D, std=0.1)

    Dt = t["hidden_size"]
    rnd("text_model.embeddings.token_embedding.weight", t["vocab_size"], Dt, std=0.5)
    rnd("text_model.embeddings.position_embedding.weight", t["max_position_embeddings"], Dt, std=0.5)
    block("text_model.encoder", t)
    rnd("text_model.final_layer_norm.weight", Dt, std=0.1, mean=1.0)
    rnd("text_model.final_layer_norm.bias", Dt, std=0.1)
    rnd("text_model.head.weight", D, Dt, std=Dt ** -0.5)
    rnd("text_model.head.bias", D, std=0.1)
    W["logit_scale"] = torch.tensor([math.log(10.0)])
    W["logit_bias"] = torch.tensor([-2.0])
    return W


def main():
    os.makedirs(OUT, exist_ok=True)
    worst_clip = prove_on_clip()

    prefix = os.path.join(OUT, "spiece")
    train_spm(prefix, 320)
    os.remove(prefix + ".vocab")
    tok = SiglipTokenizerPort(prefix + ".model")
    V = tok.sp.get_piece_size()

    cfg = {
        "architectures": ["SiglipModel"], "model_type": "siglip", "initializer_factor": 1.0,
        "text_config": {"model_type": "siglip_text_model", "hidden_size": 32, "intermediate_size": 48,
                        "num_hidden_layers": 2, "num_attention_heads": 2, "vocab_size": V, "max_position_embeddings": 64,
                        "hidden_act": "gelu_pytorch_tanh", "layer_norm_eps": 1e-6, "attention_dropout": 0.0,
                        "pad_token_id": 1, "bos_token_id": 49406, "eos_token_id": 1},
        "vision_config": {"model_type": "siglip_vision_model", "hidden_size": 32, "intermediate_size": 64,
                          "num_hidden_layers": 2, "num_attention_heads": 4, "num_channels": 3, "image_size": 32,
                          "patch_size": 8, "hidden_act": "gelu_pytorch_tanh", "layer_norm_eps": 1e-6, "attention_dropout": 0.0},
    }
    json.dump(cfg, open(os.path.join(OUT, "config.json"), "w"), indent=1)
    json.dump({"image_processor_type": "SiglipImageProcessorPil", "processor_class": "SiglipProcessor",
               "do_resize": True, "size": {"height": 32, "width": 32}, "resample": 2, "do_center_crop": False,
               "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
               "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5], "do_convert_rgb": True},
              open(os.path.join(OUT, "preprocessor_config.json"), "w"), indent=1)
    json.dump(tokenizer_json(prefix + ".model"), open(os.path.join(OUT, "tokenizer.json"), "w"), ensure_ascii=False)
    json.dump({"tokenizer_class": "SiglipTokenizer", "model_max_length": 64, "do_lower_case": True,
               "eos_token": "</s>", "pad_token": "</s>", "unk_token": "<unk>"},
              open(os.path.join(OUT, "tokenizer_config.json"), "w"), indent=1)

    W = make_weights(cfg)
    st.write(os.path.join(OUT, "model.safetensors"), {k: v.numpy() for k, v in W.items()}, {"format": "pt"})

    ids = torch.tensor([tok.encode(t) for t in TEXTS], dtype=torch.int64)
    px, u8 = zip(*(pil_pixels(os.path.join(FIX, "common", "images", p), cfg["vision_config"]["image_size"]) for p in PHOTOS))
    pixels = torch.from_numpy(np.stack(px))
    hidden = {}
    with torch.no_grad():
        img = siglip_image(W, cfg, pixels, hidden)
        txt = siglip_text(W, cfg, ids)
        lpi, lpt = siglip_logits(W, img, txt)
    G = {
        "input_ids": ids.numpy(), "pixel_values": pixels.numpy(), "pixels_uint8": np.stack(u8),
        "image_features": img.numpy(), "text_features": txt.numpy(),
        "image_embeds": (img / img.norm(dim=-1, keepdim=True)).numpy(),
        "text_embeds": (txt / txt.norm(dim=-1, keepdim=True)).numpy(),
        "logits_per_image": lpi.numpy(), "probs": torch.sigmoid(lpi).numpy(),
        "vision_last_hidden_state": hidden["vision_last_hidden_state"].numpy(),
    }
    st.write(os.path.join(OUT, "golden.safetensors"), G)

    # One training step: the first len(PHOTOS) texts with the photos; SiglipModel's loss; torch AdamW with
    # the hyperparameters of hf-clip-tiny's train-step.json.
    n = len(PHOTOS)
    params = {k: v.clone().requires_grad_(True) for k, v in W.items()}
    def loss_of(P):
        i = siglip_image(P, cfg, pixels)
        t = siglip_text(P, cfg, ids[:n])
        return siglip_loss(siglip_logits(P, i, t)[1])
    loss = loss_of(params)
    loss.backward()
    decay = lambda k, p: not (p.ndim < 2 or "bias" in k or "norm" in k or k in ("logit_scale", "logit_bias"))
    opt = torch.optim.AdamW([
        {"params": [p for k, p in params.items() if decay(k, p)], "weight_decay": 0.2},
        {"params": [p for k, p in params.items() if not decay(k, p)], "weight_decay": 0.0},
    ], lr=1e-3, betas=(0.9, 0.98), eps=1e-6)
    grads = {f"grad/{k}": p.grad.numpy().copy() for k, p in params.items()}
    opt.step()
    with torch.no_grad():
        params["logit_scale"].clamp_(0, math.log(100))
        after = loss_of(params)
    T = {"loss": np.array([loss.item()], np.float32), "loss_after_step": np.array([after.item()], np.float32),
         "input_ids": ids[:n].numpy(), "pixel_values": pixels.numpy(), **grads,
         **{f"after/{k}": p.detach().numpy() for k, p in params.items() if k != "text_model.embeddings.token_embedding.weight"}}
    st.write(os.path.join(OUT, "train-step.safetensors"), T)
    json.dump({
        "texts": TEXTS, "photos": PHOTOS, "pixels": "SiglipImageProcessor, PIL backend (Pillow %s): RGB, BILINEAR resize to 32x32, no crop, (x/255 - 0.5)/0.5" % Image.__version__,
        "padding": "max_length 64 with </s> (id %d), truncation to 63 tokens + </s>, no attention mask" % tok.eos_id,
        "train_step": {"batch": "the first %d texts with the %d photos" % (n, n),
                       "loss": "SiglipModel: -sum(logsigmoid(z * logits_per_text)) / batch, z = +1 on the diagonal, -1 off it",
                       "optimizer": {"name": "AdamW", "lr": 1e-3, "betas": [0.9, 0.98], "eps": 1e-6, "weight_decay": 0.2,
                                     "no_decay_rule": "ndim < 2 or bias or norm in name or logit_scale / logit_bias"},
                       "after_step": "logit_scale clamped to [0, ln 100]; token_embedding omitted from after/*",
                       "loss_value": loss.item(), "loss_after_step": after.item()},
        "port_check_vs_hf_clip_tiny": worst_clip,
    }, open(os.path.join(OUT, "golden.json"), "w"), indent=1)
    print("loss", loss.item(), "after", after.item())
    print("probs", torch.sigmoid(lpi).numpy().round(4))
    for t in TEXTS[:8]:
        print(repr(t), tok.tokenize(t))


if __name__ == "__main__":
    main()

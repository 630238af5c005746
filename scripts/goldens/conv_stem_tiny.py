#!/usr/bin/python3
"""A CLIP with clip-ts's convolutional image stem, and one contrastive AdamW step on it, for
test/conv-stem.test.ts (test/goldens/conv-stem-tiny/).

The model is the hf-clip-tiny fixture (transformers' CLIPModel) with its patchify embedding replaced by a
conv stem as src/models/config.ts describes `vision_config.conv_stem`: 3x3, stride-2, pad-1 Conv2d + ReLU
layers with biases, then the patch embedding (no bias) as a Conv2d with kernel = stride = patch_size / 2^layers
over the stem's output. There is no reference package for this stem (it is ours), so it is written here with
torch's own Conv2d; the rest of the port (siglip.py's CLIP pieces) is first checked against hf-clip-tiny's
published golden. Only the new tensors are written (the rest stay in ../shared/fixtures); they are drawn
from a seeded torch generator, the stem biases nonzero so that their gradient is checked.

Run: /usr/bin/python3 scripts/goldens/conv_stem_tiny.py
"""
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_np as st  # noqa: E402
import siglip as S  # noqa: E402  (the CLIP port and its proof against hf-clip-tiny)

OUT = os.path.join(S.ROOT, "test", "goldens", "conv-stem-tiny")
STEM = [4, 8, 16]


def stem_image(W, cfg, pixels):
    """CLIPVisionTransformer with the conv stem in front of the patch embedding."""
    v = cfg["vision_config"]
    eps = v.get("layer_norm_eps", 1e-5)
    x = pixels
    for i in range(len(v["conv_stem"])):
        p = f"vision_model.embeddings.conv_stem.{i}"
        x = F.relu(F.conv2d(x, W[p + ".weight"], W[p + ".bias"], stride=2, padding=1))
    k = v["patch_size"] // 2 ** len(v["conv_stem"])
    pe = F.conv2d(x, W["vision_model.embeddings.patch_embedding.weight"], stride=k).flatten(2).transpose(1, 2)
    cls = W["vision_model.embeddings.class_embedding"].expand(pixels.shape[0], 1, -1)
    x = torch.cat([cls, pe], 1) + W["vision_model.embeddings.position_embedding.weight"]
    x = S.ln(x, W, "vision_model.pre_layrnorm", eps)
    x = S.encoder(x, W, "vision_model.encoder", v)
    return F.linear(S.ln(x[:, 0], W, "vision_model.post_layernorm", eps), W["visual_projection.weight"])


def main():
    worst = S.prove_on_clip()
    d = os.path.join(S.FIX, "hf-clip-tiny")
    cfg = json.load(open(os.path.join(d, "config.json")))
    cfg["vision_config"]["conv_stem"] = STEM
    W = {k: torch.from_numpy(v.astype(np.float32)) for k, v in st.read(os.path.join(d, "model.safetensors")).items()}
    G = st.read(os.path.join(d, "golden.safetensors"))
    gen = torch.Generator().manual_seed(0)
    new = {}
    prev = 3
    for i, ch in enumerate(STEM):
        new[f"vision_model.embeddings.conv_stem.{i}.weight"] = torch.randn(ch, prev, 3, 3, generator=gen) * math.sqrt(2 / (prev * 9))
        new[f"vision_model.embeddings.conv_stem.{i}.bias"] = torch.randn(ch, generator=gen) * 0.1
        prev = ch
    k = cfg["vision_config"]["patch_size"] // 2 ** len(STEM)
    D = cfg["vision_config"]["hidden_size"]
    new["vision_model.embeddings.patch_embedding.weight"] = torch.randn(D, prev, k, k, generator=gen) * 0.05
    W.update(new)

    pixels = torch.from_numpy(G["pixel_values"].astype(np.float32))
    ids = torch.from_numpy(G["input_ids"].astype(np.int64))
    mask = torch.from_numpy(G["attention_mask"].astype(np.int64))
    n = pixels.shape[0]
    with torch.no_grad():
        feats = stem_image(W, cfg, pixels)

    # One step, as hf-clip-tiny's train-step.json: the first n captions with the n photos.
    spec = json.load(open(os.path.join(d, "train-step.json")))
    o = spec["optimizer"]
    params = {k: t.clone().requires_grad_(True) for k, t in W.items()}

    def loss_of(P):
        img = stem_image(P, cfg, pixels)
        txt = S.clip_text(P, cfg, ids[:n], mask[:n])
        img = img / img.norm(dim=-1, keepdim=True)
        txt = txt / txt.norm(dim=-1, keepdim=True)
        lpi = P["logit_scale"].exp() * img @ txt.t()
        y = torch.arange(n)
        return (F.cross_entropy(lpi, y) + F.cross_entropy(lpi.t(), y)) / 2

    loss = loss_of(params)
    loss.backward()
    decay = lambda k, p: not (p.ndim < 2 or "bias" in k or "norm" in k or k == "logit_scale")
    opt = torch.optim.AdamW([
        {"params": [p for k, p in params.items() if decay(k, p)], "weight_decay": o["weight_decay"]},
        {"params": [p for k, p in params.items() if not decay(k, p)], "weight_decay": 0.0},
    ], lr=o["lr"], betas=tuple(o["betas"]), eps=o["eps"])
    # The stem, the patch embedding and a few tensors behind them: the path the new gradient rules open.
    kept = [*new, "vision_model.embeddings.position_embedding.weight", "vision_model.pre_layrnorm.weight",
            "vision_model.encoder.layers.0.self_attn.q_proj.weight", "visual_projection.weight", "logit_scale"]
    grads = {f"grad/{k}": params[k].grad.numpy().copy() for k in kept}
    opt.step()
    with torch.no_grad():
        params["logit_scale"].clamp_(0, math.log(100))
        after = loss_of(params)
    os.makedirs(OUT, exist_ok=True)
    T = {**{f"weights/{k}": t.numpy() for k, t in new.items()}, "image_features": feats.numpy(),
         "loss": np.array([loss.item()], np.float32), "loss_after_step": np.array([after.item()], np.float32),
         **grads, **{f"after/{k}": params[k].detach().numpy() for k in kept}}
    st.write(os.path.join(OUT, "golden.safetensors"), T)
    json.dump({
        "model": "hf-clip-tiny (../shared/fixtures) with vision_config.conv_stem = %s; weights/* replace its patch embedding and add the stem" % STEM,
        "image_features": "unnormalized image embeddings of hf-clip-tiny golden's pixel_values",
        "train_step": {"batch": "hf-clip-tiny golden: the first %d captions with its %d photos" % (n, n), "optimizer": o,
                       "after_step": "logit_scale clamped to [0, ln 100]", "kept": kept,
                       "loss_value": loss.item(), "loss_after_step": after.item()},
        "port_check_vs_hf_clip_tiny": worst,
    }, open(os.path.join(OUT, "golden.json"), "w"), indent=1)
    print("loss", loss.item(), "after", after.item())


if __name__ == "__main__":
    main()

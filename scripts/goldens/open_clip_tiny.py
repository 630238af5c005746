#!/usr/bin/python3
"""Goldens for open_clip hub checkpoints (open_clip_config.json + open_clip_model.safetensors).

Route: a plain-PyTorch port of open_clip's CLIP (src/open_clip/model.py: _build_vision_tower,
_build_text_tower, CLIP.encode_image / encode_text) and of its towers (src/open_clip/transformer.py:
LayerNorm, QuickGELU, ResidualAttentionBlock, Transformer, VisionTransformer with pool_type 'tok',
text_global_pool 'argmax'), followed step by step. There is no open_clip package here, and no network.

1. The port first reproduces the published goldens of ../shared/fixtures/openai-vit-tiny (written by
   OpenAI's own clip/model.py): image_features and text_features within 1e-5.
2. Then it writes a tiny random open_clip checkpoint in the layout the LAION releases use, with
   quick_gelu = false (plain GELU: nn.GELU, exact erf), head_width and mlp_ratio other than the defaults,
   a 64 px input and preprocess_cfg mean/std of 0.5, plus goldens for the fixture photos (the
   `openai_64/*` pixels of ../shared/fixtures/common/preprocess.safetensors: torchvision Resize(64,
   bicubic) + CenterCrop(64) on the PIL image, which is open_clip's image_transform for this config)
   and the fixture captions (the `tokens` of openai-vit-tiny: OpenAI's SimpleTokenizer, open_clip's too).

Weights are stored as float16 (the 49408-row token embedding dominates the size) and the goldens are
computed in float32 from exactly those float16 values.

Run: /usr/bin/python3 scripts/goldens/open_clip_tiny.py [FIXTURES_DIR]  (default ../shared/fixtures)
Writes test/goldens/open-clip-tiny/.
"""
import json
import math
import os
import sys
from collections import OrderedDict

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_np as st  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIX = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, '..', 'shared', 'fixtures')
OUT = os.path.join(ROOT, 'test', 'goldens', 'open-clip-tiny')

# ---------------------------------------------------------------- the port (transformer.py)
class LayerNorm(nn.LayerNorm):
    # open_clip: F.layer_norm, then cast back to the input dtype (float32 throughout here).
    def forward(self, x):
        orig = x.dtype
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps).to(orig)


class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class ResidualAttentionBlock(nn.Module):
    # ls_init_value None -> ls_1 / ls_2 are identities; no cross attention.
    def __init__(self, d_model, n_head, mlp_ratio, act_layer):
        super().__init__()
        self.ln_1 = LayerNorm(d_model)
        self.attn = nn.MultiheadAttention(d_model, n_head)
        self.ln_2 = LayerNorm(d_model)
        mlp_width = int(d_model * mlp_ratio)
        self.mlp = nn.Sequential(OrderedDict([
            ('c_fc', nn.Linear(d_model, mlp_width)),
            ('gelu', act_layer()),
            ('c_proj', nn.Linear(mlp_width, d_model)),
        ]))

    def attention(self, q_x, attn_mask=None):
        attn_mask = attn_mask.to(q_x.dtype) if attn_mask is not None else None
        return self.attn(q_x, q_x, q_x, need_weights=False, attn_mask=attn_mask)[0]

    def forward(self, q_x, attn_mask=None):
        x = q_x + self.attention(self.ln_1(q_x), attn_mask=attn_mask)
        x = x + self.mlp(self.ln_2(x))
        return x


class Transformer(nn.Module):
    def __init__(self, width, layers, heads, mlp_ratio, act_layer):
        super().__init__()
        self.resblocks = nn.ModuleList([ResidualAttentionBlock(width, heads, mlp_ratio, act_layer) for _ in range(layers)])

    def forward(self, x, attn_mask=None):
        x = x.transpose(0, 1).contiguous()  # NLD -> LND
        for r in self.resblocks:
            x = r(x, attn_mask=attn_mask)
        return x.transpose(0, 1)  # LND -> NLD


class VisionTransformer(nn.Module):
    # pool_type 'tok', no attentional pool, no final_ln_after_pool, learnable positions, ln_pre present.
    def __init__(self, image_size, patch_size, width, layers, heads, mlp_ratio, output_dim, act_layer):
        super().__init__()
        grid = image_size // patch_size
        self.conv1 = nn.Conv2d(3, width, kernel_size=patch_size, stride=patch_size, bias=False)
        scale = width ** -0.5
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(scale * torch.randn(grid * grid + 1, width))
        self.ln_pre = LayerNorm(width)
        self.transformer = Transformer(width, layers, heads, mlp_ratio, act_layer)
        self.ln_post = LayerNorm(width)
        self.proj = nn.Parameter(scale * torch.randn(width, output_dim))

    def forward(self, x):
        x = self.conv1(x)
        x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)
        x = torch.cat([self.class_embedding.view(1, 1, -1).expand(x.shape[0], -1, -1).to(x.dtype), x], dim=1)
        x = x + self.positional_embedding.to(x.dtype)
        x = self.ln_pre(x)
        x = self.transformer(x)
        x = self.ln_post(x)
        pooled = x[:, 0]
        return pooled @ self.proj


class CLIP(nn.Module):
    """open_clip.model.CLIP: the text tower's parts sit at the top level (OpenAI's state-dict names)."""

    def __init__(self, cfg):
        super().__init__()
        m = cfg['model_cfg']
        v, t = m['vision_cfg'], m['text_cfg']
        act = QuickGELU if m.get('quick_gelu', False) else nn.GELU
        embed_dim = m['embed_dim']
        self.visual = VisionTransformer(
            image_size=v['image_size'], patch_size=v['patch_size'], width=v['width'], layers=v['layers'],
            heads=v['width'] // v.get('head_width', 64), mlp_ratio=v.get('mlp_ratio', 4.0), output_dim=embed_dim, act_layer=act)
        width = t.get('width', 512)
        self.context_length = t.get('context_length', 77)
        self.transformer = Transformer(width, t.get('layers', 12), t.get('heads', 8), t.get('mlp_ratio', 4.0), act)
        self.token_embedding = nn.Embedding(t.get('vocab_size', 49408), width)
        self.positional_embedding = nn.Parameter(torch.empty(self.context_length, width))
        self.ln_final = LayerNorm(width)
        self.text_projection = nn.Parameter(torch.empty(width, embed_dim))
        self.logit_scale = nn.Parameter(torch.ones([]) * np.log(1 / 0.07))
        mask = torch.empty(self.context_length, self.context_length)
        mask.fill_(float('-inf'))
        mask.triu_(1)
        self.register_buffer('attn_mask', mask, persistent=False)

    def encode_image(self, image):
        return self.visual(image)

    def encode_text(self, text):
        x = self.token_embedding(text)
        x = x + self.positional_embedding
        x = self.transformer(x, attn_mask=self.attn_mask)
        x = self.ln_final(x)
        # text_global_pool 'argmax': the EOT token has the largest id
        x = x[torch.arange(x.shape[0]), text.argmax(dim=-1)]
        return x @ self.text_projection


def load(model, tensors):
    sd = {k: torch.from_numpy(np.asarray(v, dtype=np.float32)) for k, v in tensors.items()}
    missing, unexpected = model.load_state_dict(sd, strict=False)
    assert not missing and not unexpected, (missing, unexpected)


def pixels_from_u8(u8, mean, std):
    x = torch.from_numpy(u8.astype(np.float32) / 255.0).permute(2, 0, 1)
    return (x - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)


# ---------------------------------------------------------------- 1. reproduce openai-vit-tiny
def check_port():
    d = os.path.join(FIX, 'openai-vit-tiny')
    cfg = json.load(open(os.path.join(d, 'open_clip_config.json')))
    model = CLIP(cfg).eval()
    load(model, st.read(os.path.join(d, 'open_clip_model.safetensors')))
    g = st.read(os.path.join(d, 'golden.safetensors'))
    with torch.no_grad():
        img = model.encode_image(torch.from_numpy(g['pixel_values']))
        txt = model.encode_text(torch.from_numpy(g['tokens']).long())
    di = (img - torch.from_numpy(g['image_features'])).abs().max().item()
    dt = (txt - torch.from_numpy(g['text_features'])).abs().max().item()
    print(f'openai-vit-tiny: image_features max |diff| {di:.2e}, text_features max |diff| {dt:.2e}')
    assert di < 1e-5 and dt < 1e-5, 'the port does not reproduce the published goldens'
    return di, dt


# ---------------------------------------------------------------- 2. the new tiny checkpoint
CONFIG = {
    'model_cfg': {
        'embed_dim': 24,
        'quick_gelu': False,
        'vision_cfg': {'image_size': 64, 'layers': 2, 'width': 48, 'head_width': 16, 'patch_size': 16, 'mlp_ratio': 2.0},
        'text_cfg': {'context_length': 77, 'vocab_size': 49408, 'width': 8, 'heads': 2, 'layers': 2},
    },
    'preprocess_cfg': {'mean': [0.5, 0.5, 0.5], 'std': [0.5, 0.5, 0.5], 'interpolation': 'bicubic', 'resize_mode': 'shortest'},
}


def perturb_norms(model, gen):
    # LayerNorm weights/biases away from 1/0, so that a swapped or forgotten one changes the output.
    for mod in model.modules():
        if isinstance(mod, nn.LayerNorm):
            mod.weight.data = 1 + 0.2 * torch.randn(mod.weight.shape, generator=gen)
            mod.bias.data = 0.1 * torch.randn(mod.bias.shape, generator=gen)


def make_tiny():
    gen = torch.Generator().manual_seed(20260)
    torch.manual_seed(20260)
    model = CLIP(CONFIG)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name == 'logit_scale':
                p.fill_(math.log(1 / 0.07))
            elif 'bias' in name:
                p.copy_(0.05 * torch.randn(p.shape, generator=gen))
            else:
                fan = p.shape[-1] if p.dim() > 1 else p.shape[0]
                p.copy_(torch.randn(p.shape, generator=gen) * fan ** -0.5)
        model.token_embedding.weight.mul_(0.5)
        perturb_norms(model, gen)
    # Stored as float16; the goldens use exactly the stored values.
    sd = {k: v.detach().numpy().astype(np.float16) for k, v in model.state_dict().items()}
    load(model, sd)
    return model.eval(), sd


def main():
    di, dt = check_port()
    os.makedirs(OUT, exist_ok=True)
    model, sd = make_tiny()
    st.write(os.path.join(OUT, 'open_clip_model.safetensors'), sd, {'format': 'pt'}, sort=False)
    with open(os.path.join(OUT, 'open_clip_config.json'), 'w') as f:
        json.dump(CONFIG, f, indent=2)
        f.write('\n')

    meta = json.load(open(os.path.join(FIX, 'openai-vit-tiny', 'golden.json')))
    tokens = st.read(os.path.join(FIX, 'openai-vit-tiny', 'golden.safetensors'))['tokens']
    pp = st.read(os.path.join(FIX, 'common', 'preprocess.safetensors'))
    pc = CONFIG['preprocess_cfg']
    pixels = torch.stack([pixels_from_u8(pp[f'openai_64/{p}'], pc['mean'], pc['std']) for p in meta['photos']])
    with torch.no_grad():
        img = model.encode_image(pixels)
        txt = model.encode_text(torch.from_numpy(tokens).long())
        ie = img / img.norm(dim=-1, keepdim=True)
        te = txt / txt.norm(dim=-1, keepdim=True)
        logits = model.logit_scale.exp() * ie @ te.t()
    st.write(os.path.join(OUT, 'golden.safetensors'), sort=False, tensors=OrderedDict([
        ('tokens', tokens.astype(np.int64)),
        ('pixel_values', pixels.numpy().astype(np.float32)),
        ('image_features', img.numpy().astype(np.float32)),
        ('text_features', txt.numpy().astype(np.float32)),
        ('logits_per_image', logits.numpy().astype(np.float32)),
    ]))
    with open(os.path.join(OUT, 'golden.json'), 'w') as f:
        json.dump({
            'captions': meta['captions'], 'photos': meta['photos'], 'pixels': 'openai_64 of common/preprocess.safetensors, normalized with preprocess_cfg',
            'tokens': 'openai-vit-tiny golden tokens (SimpleTokenizer, zero padded to 77)',
            'port_check': {'openai-vit-tiny image_features max_abs_diff': di, 'openai-vit-tiny text_features max_abs_diff': dt},
        }, f, indent=1)
        f.write('\n')
    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))
    print(f'wrote {OUT} ({total / 2**20:.2f} MiB)')


if __name__ == '__main__':
    main()

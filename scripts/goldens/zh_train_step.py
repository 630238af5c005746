#!/usr/bin/python3
"""One contrastive AdamW step on zh-clip-tiny (Chinese-CLIP: BERT text tower pooled at [CLS] + CLIP ViT),
in plain PyTorch, for test/zh-train-step.test.ts.

The model is a port of transformers' modeling_chinese_clip.py (ChineseCLIPModel: ChineseCLIPTextModel without
pooler, ChineseCLIPVisionTransformer, text/visual projections, logit_scale, chinese_clip_loss), written here
because this machine has PyTorch but no transformers. The port is first checked against the fixture's
published goldens (text_features, image_features, logits_per_image of golden.safetensors); then it takes
one AdamW step with the optimizer settings of hf-clip-tiny/train-step.json, once training everything and
once with the vision tower (vision_model.* and visual_projection) frozen.

Dropout is off (p = 0): HF's train mode would drop 10% of the BERT activations at random, which no golden
can reproduce; clip-ts trains without dropout.

Usage: /usr/bin/python3 scripts/goldens/zh_train_step.py [FIXTURES_DIR] [OUT_DIR]
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

FIX = sys.argv[1] if len(sys.argv) > 1 else '/work/shared/fixtures'
OUT = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(__file__), '..', '..', 'test', 'goldens', 'zh-clip-train-step')
MODEL = os.path.join(FIX, 'zh-clip-tiny')

ACT = {
    'gelu': lambda x: F.gelu(x),  # exact (erf), as ACT2FN['gelu']
    'quick_gelu': lambda x: x * torch.sigmoid(1.702 * x),
}


def linear(p, name, x, bias=True):
    return F.linear(x, p[name + '.weight'], p[name + '.bias'] if bias else None)


def text_model(p, cfg, input_ids, attention_mask):
    """ChineseCLIPTextModel(add_pooling_layer=False): BERT embeddings + post-LN encoder; last_hidden_state."""
    B, T = input_ids.shape
    H = cfg['num_attention_heads']
    D = cfg['hidden_size']
    hd = D // H
    eps = cfg['layer_norm_eps']
    e = 'text_model.embeddings.'
    # ChineseCLIPTextEmbeddings.forward: inputs_embeds + token_type_embeddings, then += position_embeddings.
    token_type_ids = torch.zeros((B, T), dtype=torch.long)
    position_ids = torch.arange(T).unsqueeze(0)
    x = F.embedding(input_ids, p[e + 'word_embeddings.weight']) + F.embedding(token_type_ids, p[e + 'token_type_embeddings.weight'])
    x = x + F.embedding(position_ids, p[e + 'position_embeddings.weight'])
    x = F.layer_norm(x, (D,), p[e + 'LayerNorm.weight'], p[e + 'LayerNorm.bias'], eps)
    # get_extended_attention_mask: (1 - mask) * finfo.min, broadcast as [B, 1, 1, T].
    ext = (1.0 - attention_mask[:, None, None, :].to(torch.float32)) * torch.finfo(torch.float32).min
    for i in range(cfg['num_hidden_layers']):
        l = f'text_model.encoder.layer.{i}.'

        def heads(t):
            return t.view(B, T, H, hd).permute(0, 2, 1, 3)
        q = heads(linear(p, l + 'attention.self.query', x))
        k = heads(linear(p, l + 'attention.self.key', x))
        v = heads(linear(p, l + 'attention.self.value', x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(hd) + ext
        ctx = torch.matmul(F.softmax(scores, dim=-1), v).permute(0, 2, 1, 3).contiguous().view(B, T, D)
        a = linear(p, l + 'attention.output.dense', ctx)
        x = F.layer_norm(a + x, (D,), p[l + 'attention.output.LayerNorm.weight'], p[l + 'attention.output.LayerNorm.bias'], eps)
        h = ACT[cfg['hidden_act']](linear(p, l + 'intermediate.dense', x))
        o = linear(p, l + 'output.dense', h)
        x = F.layer_norm(o + x, (D,), p[l + 'output.LayerNorm.weight'], p[l + 'output.LayerNorm.bias'], eps)
    return x


def vision_model(p, cfg, pixel_values):
    """ChineseCLIPVisionTransformer: patch conv, [class; patches] + positions, pre-LN, pre-LN encoder, post-LN on [CLS]."""
    B = pixel_values.shape[0]
    D = cfg['hidden_size']
    H = cfg['num_attention_heads']
    hd = D // H
    eps = cfg['layer_norm_eps']
    e = 'vision_model.embeddings.'
    patches = F.conv2d(pixel_values, p[e + 'patch_embedding.weight'], stride=cfg['patch_size']).flatten(2).transpose(1, 2)
    cls = p[e + 'class_embedding'].expand(B, 1, -1)
    x = torch.cat([cls, patches], dim=1) + p[e + 'position_embedding.weight'][None]
    x = F.layer_norm(x, (D,), p['vision_model.pre_layrnorm.weight'], p['vision_model.pre_layrnorm.bias'], eps)
    N = x.shape[1]
    for i in range(cfg['num_hidden_layers']):
        l = f'vision_model.encoder.layers.{i}.'
        r = x
        h = F.layer_norm(x, (D,), p[l + 'layer_norm1.weight'], p[l + 'layer_norm1.bias'], eps)
        # ChineseCLIPVisionAttention: q scaled by head_dim^-0.5 before the product.
        q = linear(p, l + 'self_attn.q_proj', h) * hd ** -0.5
        k = linear(p, l + 'self_attn.k_proj', h)
        v = linear(p, l + 'self_attn.v_proj', h)

        def heads(t):
            return t.view(B, N, H, hd).transpose(1, 2)
        w = F.softmax(torch.matmul(heads(q), heads(k).transpose(-1, -2)), dim=-1)
        ctx = torch.matmul(w, heads(v)).transpose(1, 2).reshape(B, N, D)
        x = r + linear(p, l + 'self_attn.out_proj', ctx)
        r = x
        h = F.layer_norm(x, (D,), p[l + 'layer_norm2.weight'], p[l + 'layer_norm2.bias'], eps)
        h = linear(p, l + 'mlp.fc2', ACT[cfg['hidden_act']](linear(p, l + 'mlp.fc1', h)))
        x = r + h
    return F.layer_norm(x[:, 0, :], (D,), p['vision_model.post_layernorm.weight'], p['vision_model.post_layernorm.bias'], eps)


def features(p, cfg, input_ids, attention_mask, pixel_values):
    text = F.linear(text_model(p, cfg['text_config'], input_ids, attention_mask)[:, 0, :], p['text_projection.weight'])
    image = F.linear(vision_model(p, cfg['vision_config'], pixel_values), p['visual_projection.weight'])
    return text, image


def loss_of(p, cfg, input_ids, attention_mask, pixel_values):
    """ChineseCLIPModel.forward(return_loss=True): chinese_clip_loss(logits_per_text)."""
    text, image = features(p, cfg, input_ids, attention_mask, pixel_values)
    text = text / text.norm(p=2, dim=-1, keepdim=True)
    image = image / image.norm(p=2, dim=-1, keepdim=True)
    logits_per_text = torch.matmul(text, image.t()) * p['logit_scale'].exp()
    target = torch.arange(len(logits_per_text))
    return (F.cross_entropy(logits_per_text, target) + F.cross_entropy(logits_per_text.t(), target)) / 2.0


def main():
    torch.set_num_threads(1)
    cfg = json.load(open(os.path.join(MODEL, 'config.json')))
    spec = json.load(open(os.path.join(FIX, 'hf-clip-tiny', 'train-step.json')))
    weights = {k: torch.from_numpy(v) for k, v in st.read(os.path.join(MODEL, 'model.safetensors')).items()}
    golden = {k: torch.from_numpy(v) for k, v in st.read(os.path.join(MODEL, 'golden.safetensors')).items()}

    # 1. The port reproduces the published goldens.
    with torch.no_grad():
        text, image = features(weights, cfg, golden['input_ids'], golden['attention_mask'], golden['pixel_values'])
        tn = text / text.norm(dim=-1, keepdim=True)
        im = image / image.norm(dim=-1, keepdim=True)
        logits = torch.matmul(im, tn.t()) * weights['logit_scale'].exp()
    check = {
        'text_features': (text - golden['text_features']).abs().max().item(),
        'image_features': (image - golden['image_features']).abs().max().item(),
        'logits_per_image': (logits - golden['logits_per_image']).abs().max().item(),
    }
    print('port vs published goldens (max abs diff):', check)
    assert all(v < 1e-5 for v in check.values()), check

    # 2. One AdamW step, as hf-clip-tiny's train-step golden: the first len(photos) captions with all photos.
    n = golden['pixel_values'].shape[0]
    ids = golden['input_ids'][:n]
    mask = golden['attention_mask'][:n]
    pixels = golden['pixel_values']
    o = spec['optimizer']
    omitted = ('text_model.embeddings.word_embeddings.weight', 'vision_model.embeddings.patch_embedding.weight')
    out = {'input_ids': ids, 'attention_mask': mask}
    summary = {}
    for mode in ('full', 'frozen_vision'):
        p = {k: v.clone().requires_grad_(True) for k, v in weights.items()}
        frozen = (lambda k: k.startswith('vision_model.') or k.startswith('visual_projection.')) if mode == 'frozen_vision' else (lambda k: False)
        for k, v in p.items():
            v.requires_grad_(not frozen(k))
        trained = [k for k in sorted(p) if not frozen(k)]
        decay = [p[k] for k in trained if not (p[k].ndim < 2 or 'bias' in k or 'norm' in k or 'logit_scale' in k)]
        no_decay = [p[k] for k in trained if (p[k].ndim < 2 or 'bias' in k or 'norm' in k or 'logit_scale' in k)]
        opt = torch.optim.AdamW([{'params': decay, 'weight_decay': o['weight_decay']}, {'params': no_decay, 'weight_decay': 0.0}],
                                lr=o['lr'], betas=tuple(o['betas']), eps=o['eps'])
        loss = loss_of(p, cfg, ids, mask, pixels)
        loss.backward()
        for k in trained:
            if k not in omitted:
                out[f'{mode}/grad/{k}'] = p[k].grad.clone()
        opt.step()
        with torch.no_grad():
            p['logit_scale'].clamp_(0, math.log(100))
            after = loss_of(p, cfg, ids, mask, pixels)
        for k in trained:
            if k not in omitted:
                out[f'{mode}/after/{k}'] = p[k].detach().clone()
        out[f'{mode}/loss'] = loss.detach().reshape(1)
        out[f'{mode}/loss_after_step'] = after.reshape(1)
        summary[mode] = {'loss': loss.item(), 'loss_after_step': after.item(), 'trained_tensors': len(trained)}
        print(mode, summary[mode])

    os.makedirs(OUT, exist_ok=True)
    st.write(os.path.join(OUT, 'train-step.safetensors'), out, {'format': 'pt'})
    with open(os.path.join(OUT, 'train-step.json'), 'w') as f:
        json.dump({
            'model': 'zh-clip-tiny (fixtures)',
            'batch': f'the first {n} captions of zh-clip-tiny/golden.safetensors (input_ids, attention_mask: rows 0..{n - 1}, '
                     'padded to 52, stored here) with all its pixel_values (read from the fixture); dropout off',
            'loss': 'chinese_clip_loss(logits_per_text): mean of cross_entropy over texts and over images',
            'optimizer': o,
            'frozen_vision': 'vision_model.* and visual_projection.weight get no gradient and are not in the optimizer',
            'after_step': 'logit_scale clamped to [0, ln 100]',
            'omitted': list(omitted),
            'port_check': check,
            **summary,
        }, f, indent=1)


if __name__ == '__main__':
    main()

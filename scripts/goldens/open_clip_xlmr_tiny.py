#!/usr/bin/python3
"""Goldens for open_clip checkpoints with a Hugging Face text tower (text_cfg.hf_model_name, e.g. LAION's
xlm-roberta-base / xlm-roberta-large multilingual releases).

Route: a plain-PyTorch port, followed step by step (no open_clip / transformers package here, no network), of
  - open_clip src/open_clip/hf_model.py: HFTextEncoder (attention mask = ids != pad_token_id, the HF model's
    last_hidden_state, MeanPooler / ClsLastHiddenStatePooler, proj 'linear' = Linear(bias=False) or 'mlp' =
    Linear(bias=False)-GELU-Linear(bias=False) with hidden (d_model + embed_dim) // 2);
  - transformers models/xlm_roberta/modeling_xlm_roberta.py (= RoBERTa): word + position + token-type
    embeddings, position ids = cumsum(ids != padding_idx) * mask + padding_idx, LayerNorm, BERT post-LN layers
    with the additive (1 - mask) * finfo.min attention mask, GELU (erf);
  - the image tower: scripts/goldens/open_clip_tiny.py's port of open_clip's VisionTransformer.

1. The port is checked first: its BERT half (position offset off, CLS pooling + linear projection) reproduces
   ../shared/fixtures/zh-clip-tiny's text_features (transformers' ChineseCLIPModel), and its image half
   reproduces openai-vit-tiny (open_clip_tiny.check_port).
2. Then it trains a tiny SentencePiece Unigram model, converts it to tokenizer.json the way transformers'
   XLMRobertaConverter does (<s> <pad> </s> <unk> = 0..3, spm pieces from id 3 on shifted by the fairseq offset
   1, <mask> last; Metaspace; TemplateProcessing <s> $A </s>), and writes a tiny random open_clip checkpoint
   with an XLM-R text tower (hidden 32, 2 layers, mean_pooler, mlp projection) plus goldens.

Run: /usr/bin/python3 scripts/goldens/open_clip_xlmr_tiny.py [FIXTURES_DIR]  (default ../shared/fixtures)
Writes test/goldens/open-clip-xlmr-tiny/.
"""
import io
import json
import math
import os
import sys
from collections import OrderedDict

import numpy as np
import sentencepiece as spm
import torch
from torch import nn
from torch.nn import functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_np as st  # noqa: E402
import open_clip_tiny as oct  # noqa: E402  (the vision port, checked against openai-vit-tiny)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIX = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, '..', 'shared', 'fixtures')
OUT = os.path.join(ROOT, 'test', 'goldens', 'open-clip-xlmr-tiny')
FMIN = torch.finfo(torch.float32).min


# ---------------------------------------------------------------- the port (modeling_xlm_roberta.py / BERT)
class Embeddings(nn.Module):
    def __init__(self, c, roberta):
        super().__init__()
        self.word_embeddings = nn.Embedding(c['vocab_size'], c['hidden_size'])
        self.position_embeddings = nn.Embedding(c['max_position_embeddings'], c['hidden_size'])
        self.token_type_embeddings = nn.Embedding(c['type_vocab_size'], c['hidden_size'])
        self.LayerNorm = nn.LayerNorm(c['hidden_size'], eps=c['layer_norm_eps'])
        self.roberta = roberta
        self.padding_idx = c.get('pad_token_id', 0)

    def forward(self, ids):
        if self.roberta:
            # create_position_ids_from_input_ids (past_key_values_length 0)
            mask = ids.ne(self.padding_idx).int()
            pos = (torch.cumsum(mask, dim=1).type_as(mask) * mask).long() + self.padding_idx
        else:
            pos = torch.arange(ids.shape[1]).unsqueeze(0).expand_as(ids)
        types = torch.zeros_like(ids)
        x = self.word_embeddings(ids) + self.token_type_embeddings(types) + self.position_embeddings(pos)
        return self.LayerNorm(x)


class SelfAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        d = c['hidden_size']
        self.h = c['num_attention_heads']
        self.query, self.key, self.value = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)

    def forward(self, x, add_mask):
        B, T, D = x.shape
        hd = D // self.h
        sp = lambda t: t.view(B, T, self.h, hd).permute(0, 2, 1, 3)
        q, k, v = sp(self.query(x)), sp(self.key(x)), sp(self.value(x))
        scores = q @ k.transpose(-1, -2) / math.sqrt(hd) + add_mask
        ctx = F.softmax(scores, dim=-1) @ v
        return ctx.permute(0, 2, 1, 3).reshape(B, T, D)


class DenseLN(nn.Module):
    def __init__(self, i, o, eps):
        super().__init__()
        self.dense = nn.Linear(i, o)
        self.LayerNorm = nn.LayerNorm(o, eps=eps)

    def forward(self, h, x):
        return self.LayerNorm(self.dense(h) + x)


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        setattr(self, 'self', SelfAttention(c))
        self.output = DenseLN(c['hidden_size'], c['hidden_size'], c['layer_norm_eps'])

    def forward(self, x, m):
        return self.output(getattr(self, 'self')(x, m), x)


class Intermediate(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c['hidden_size'], c['intermediate_size'])

    def forward(self, x):
        return F.gelu(self.dense(x))  # hidden_act "gelu": erf


class Layer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.attention = Attention(c)
        self.intermediate = Intermediate(c)
        self.output = DenseLN(c['intermediate_size'], c['hidden_size'], c['layer_norm_eps'])

    def forward(self, x, m):
        a = self.attention(x, m)
        return self.output(self.intermediate(a), a)


class Encoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.layer = nn.ModuleList([Layer(c) for _ in range(c['num_hidden_layers'])])


class BertModel(nn.Module):
    """XLMRobertaModel(add_pooling_layer=False) when roberta, else BertModel without its pooler."""

    def __init__(self, c, roberta=True):
        super().__init__()
        self.embeddings = Embeddings(c, roberta)
        self.encoder = Encoder(c)

    def forward(self, ids, attention_mask):
        x = self.embeddings(ids)
        add = (1.0 - attention_mask[:, None, None, :].float()) * FMIN
        for layer in self.encoder.layer:
            x = layer(x, add)
        return x  # last_hidden_state


class HFTextEncoder(nn.Module):
    """open_clip hf_model.HFTextEncoder for a model without a transformer pooler."""

    def __init__(self, c, embed_dim, pooler_type, proj_type, roberta=True):
        super().__init__()
        self.pad = c['pad_token_id']
        self.transformer = BertModel(c, roberta)
        self.pooler_type = pooler_type
        d = c['hidden_size']
        if proj_type == 'linear':
            self.proj = nn.Linear(d, embed_dim, bias=False)
        elif proj_type == 'mlp':
            hidden = (d + embed_dim) // 2
            self.proj = nn.Sequential(nn.Linear(d, hidden, bias=False), nn.GELU(), nn.Linear(hidden, embed_dim, bias=False))
        else:
            raise ValueError(proj_type)

    def forward(self, ids):
        attn_mask = (ids != self.pad).long()
        x = self.transformer(ids, attn_mask)
        if self.pooler_type == 'mean_pooler':
            pooled = (x * attn_mask.unsqueeze(-1)).sum(dim=1) / attn_mask.sum(-1, keepdim=True)
        elif self.pooler_type == 'cls_last_hidden_state_pooler':
            pooled = x[:, 0, :]
        else:
            raise ValueError(self.pooler_type)
        return self.proj(pooled)


def load_bert(model, tensors, prefix):
    sd = {}
    for k, v in tensors.items():
        if k.startswith(prefix):
            sd[k[len(prefix):]] = torch.from_numpy(np.asarray(v, dtype=np.float32))
    missing, unexpected = model.load_state_dict(sd, strict=False)
    assert not missing, missing
    return unexpected


# ---------------------------------------------------------------- 1. check the port
def check_port():
    d = os.path.join(FIX, 'zh-clip-tiny')
    c = json.load(open(os.path.join(d, 'config.json')))
    tc = c['text_config']
    # Chinese-CLIP: BERT (no position offset), [CLS] of last_hidden_state, text_projection (no bias).
    enc = HFTextEncoder(tc, c['projection_dim'], 'cls_last_hidden_state_pooler', 'linear', roberta=False).eval()
    w = st.read(os.path.join(d, 'model.safetensors'))
    load_bert(enc.transformer, w, 'text_model.')
    enc.proj.weight.data = torch.from_numpy(w['text_projection.weight'].astype(np.float32))
    g = st.read(os.path.join(d, 'golden.safetensors'))
    with torch.no_grad():
        ids = torch.from_numpy(g['input_ids'])
        x = enc.transformer(ids, torch.from_numpy(g['attention_mask']))
        txt = enc.proj(x[:, 0, :])
    dt = (txt - torch.from_numpy(g['text_features'])).abs().max().item()
    print(f'zh-clip-tiny: text_features max |diff| {dt:.2e}')
    assert dt < 1e-5, 'the BERT port does not reproduce zh-clip-tiny'
    di, _ = oct.check_port()
    return dt, di


# ---------------------------------------------------------------- 2. tokenizer
CORPUS = [
    'a photo of a cat', 'a photo of a dog', 'a photo of an astronaut', 'a cup of coffee', 'a rocket launch',
    'a temple in china', 'a flower in the garden', 'une photo d\'un chat', 'une tasse de café', 'un chien noir',
    'ein Foto einer Katze', 'eine Tasse Kaffee', 'eine Rakete startet', 'una foto de un perro', 'una flor roja',
    'фотография кошки', 'чашка кофе', '一只猫', '一杯咖啡', '火箭发射', 'un astronaute dans l\'espace',
    'the quick brown fox jumps over the lazy dog', 'Katzen und Hunde spielen im Garten', 'café au lait et croissant',
]


def train_spm():
    buf = io.BytesIO()
    text = '\n'.join(CORPUS * 4)
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(text.split('\n')), model_writer=buf, model_type='unigram', vocab_size=120,
        character_coverage=1.0, normalization_rule_name='identity', seed_sentencepiece_size=1000,
        hard_vocab_limit=False, num_threads=1, unk_id=0, bos_id=1, eos_id=2, pad_id=-1)
    return spm.SentencePieceProcessor(model_proto=buf.getvalue())


def tokenizer_json(sp):
    # transformers' XLMRobertaConverter: fairseq specials, spm pieces from id 3 on (id + 1), <mask> last.
    vocab = [['<s>', 0.0], ['<pad>', 0.0], ['</s>', 0.0], ['<unk>', 0.0]]
    vocab += [[sp.id_to_piece(i), float(sp.get_score(i))] for i in range(3, sp.get_piece_size())]
    vocab += [['<mask>', 0.0]]
    special = lambda i, t: {'id': i, 'content': t, 'single_word': False, 'lstrip': t == '<mask>', 'rstrip': False, 'normalized': False, 'special': True}
    return {
        'version': '1.0', 'truncation': None, 'padding': None,
        'added_tokens': [special(0, '<s>'), special(1, '<pad>'), special(2, '</s>'), special(3, '<unk>'), special(len(vocab) - 1, '<mask>')],
        # The real XLM-R file adds a Precompiled nmt_nfkc charsmap; this spm model normalizes nothing (identity).
        'normalizer': {'type': 'Replace', 'pattern': {'Regex': ' {2,}'}, 'content': ' '},
        'pre_tokenizer': {'type': 'Metaspace', 'replacement': '\u2581', 'prepend_scheme': 'always', 'split': True},
        'post_processor': {
            'type': 'TemplateProcessing',
            'single': [{'SpecialToken': {'id': '<s>', 'type_id': 0}}, {'Sequence': {'id': 'A', 'type_id': 0}}, {'SpecialToken': {'id': '</s>', 'type_id': 0}}],
            'pair': [{'SpecialToken': {'id': '<s>', 'type_id': 0}}, {'Sequence': {'id': 'A', 'type_id': 0}}, {'SpecialToken': {'id': '</s>', 'type_id': 0}},
                     {'SpecialToken': {'id': '</s>', 'type_id': 0}}, {'Sequence': {'id': 'B', 'type_id': 0}}, {'SpecialToken': {'id': '</s>', 'type_id': 0}}],
            'special_tokens': {t: {'id': t, 'ids': [i], 'tokens': [t]} for t, i in [('<s>', 0), ('</s>', 2)]},
        },
        'decoder': {'type': 'Metaspace', 'replacement': '\u2581', 'prepend_scheme': 'always', 'split': True},
        'model': {'type': 'Unigram', 'unk_id': 3, 'vocab': vocab, 'byte_fallback': False},
    }


def encode(sp, text, ctx):
    # XLMRobertaTokenizer: spm ids shifted by the fairseq offset (spm unk 0 -> 3), <s> ... </s>, truncated and
    # padded with <pad> (1) to the context length (open_clip HFTokenizer: padding='max_length', truncation).
    ids = [3 if i == 0 else i + 1 for i in sp.encode(text)]
    ids = [0] + ids[:ctx - 2] + [2]
    return ids + [1] * (ctx - len(ids))


# ---------------------------------------------------------------- 3. the tiny checkpoint
CONTEXT = 32
OC_CONFIG = {
    'model_cfg': {
        'embed_dim': 24,
        'quick_gelu': False,
        'vision_cfg': {'image_size': 64, 'layers': 2, 'width': 48, 'head_width': 16, 'patch_size': 16, 'mlp_ratio': 2.0},
        'text_cfg': {'hf_model_name': 'xlm-roberta-base', 'hf_tokenizer_name': 'xlm-roberta-base', 'hf_proj_type': 'mlp',
                     'hf_pooler_type': 'mean_pooler', 'context_length': CONTEXT},
    },
    'preprocess_cfg': {'mean': [0.48145466, 0.4578275, 0.40821073], 'std': [0.26862954, 0.26130258, 0.27577711]},
}


def hf_config(vocab_size):
    return {
        'architectures': ['XLMRobertaForMaskedLM'], 'model_type': 'xlm-roberta',
        'attention_probs_dropout_prob': 0.1, 'hidden_dropout_prob': 0.1, 'hidden_act': 'gelu',
        'hidden_size': 32, 'intermediate_size': 64, 'num_attention_heads': 4, 'num_hidden_layers': 2,
        'layer_norm_eps': 1e-05, 'max_position_embeddings': CONTEXT + 2, 'type_vocab_size': 1,
        'vocab_size': vocab_size, 'pad_token_id': 1, 'bos_token_id': 0, 'eos_token_id': 2,
        'position_embedding_type': 'absolute',
    }


CAPTIONS = [
    'a photo of a cat', 'a photo of a dog', 'a cup of coffee', 'a rocket launch', 'une photo d\'un chat',
    'eine Tasse Kaffee', 'фотография кошки', '一只猫', 'Katzen und Hunde spielen im Garten', 'zebra xylophone 🦓',
]


def main():
    dt, di = check_port()
    os.makedirs(OUT, exist_ok=True)
    sp = train_spm()
    tok = tokenizer_json(sp)
    V = len(tok['model']['vocab'])
    hc = hf_config(V)
    gen = torch.Generator().manual_seed(20261)
    torch.manual_seed(20261)
    m = OC_CONFIG['model_cfg']
    visual = oct.VisionTransformer(image_size=64, patch_size=16, width=48, layers=2, heads=3, mlp_ratio=2.0, output_dim=24, act_layer=nn.GELU)
    text = HFTextEncoder(hc, m['embed_dim'], 'mean_pooler', 'mlp')
    model = nn.Module()
    model.visual, model.text = visual, text
    model.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name == 'logit_scale':
                continue
            if 'bias' in name:
                p.copy_(0.05 * torch.randn(p.shape, generator=gen))
            else:
                fan = p.shape[-1] if p.dim() > 1 else p.shape[0]
                p.copy_(torch.randn(p.shape, generator=gen) * fan ** -0.5)
        oct.perturb_norms(model, gen)
    sd = OrderedDict((k, v.detach().numpy().astype(np.float32)) for k, v in model.state_dict().items())
    # transformers < 4.31 saved the position_ids buffer; LAION's checkpoints hold it: the loader must accept it.
    sd['text.transformer.embeddings.position_ids'] = np.arange(CONTEXT + 2, dtype=np.int64)[None, :]
    st.write(os.path.join(OUT, 'open_clip_model.safetensors'), sd, {'format': 'pt'}, sort=False)
    for name, obj in [('open_clip_config.json', OC_CONFIG), ('config.json', hc), ('tokenizer.json', tok)]:
        with open(os.path.join(OUT, name), 'w') as f:
            json.dump(obj, f, indent=1 if name != 'tokenizer.json' else None, ensure_ascii=False)
            f.write('\n')

    meta = json.load(open(os.path.join(FIX, 'openai-vit-tiny', 'golden.json')))
    pp = st.read(os.path.join(FIX, 'common', 'preprocess.safetensors'))
    pc = OC_CONFIG['preprocess_cfg']
    pixels = torch.stack([oct.pixels_from_u8(pp[f'openai_64/{p}'], pc['mean'], pc['std']) for p in meta['photos']])
    ids = torch.tensor([encode(sp, c, CONTEXT) for c in CAPTIONS], dtype=torch.long)
    model.eval()
    with torch.no_grad():
        img = visual(pixels)
        txt = text(ids)
        ie = img / img.norm(dim=-1, keepdim=True)
        te = txt / txt.norm(dim=-1, keepdim=True)
        logits = model.logit_scale.exp() * ie @ te.t()
    st.write(os.path.join(OUT, 'golden.safetensors'), sort=False, tensors=OrderedDict([
        ('input_ids', ids.numpy().astype(np.int64)),
        ('pixel_values', pixels.numpy().astype(np.float32)),
        ('image_features', img.numpy().astype(np.float32)),
        ('text_features', txt.numpy().astype(np.float32)),
        ('logits_per_image', logits.numpy().astype(np.float32)),
    ]))
    with open(os.path.join(OUT, 'golden.json'), 'w') as f:
        json.dump({
            'captions': CAPTIONS, 'photos': meta['photos'],
            'pixels': 'openai_64 of common/preprocess.safetensors, normalized with preprocess_cfg',
            'input_ids': f'SentencePiece ids + fairseq offset, <s> ... </s>, padded with <pad> (1) to {CONTEXT}',
            'port_check': {'zh-clip-tiny text_features max_abs_diff': dt, 'openai-vit-tiny image_features max_abs_diff': di},
        }, f, indent=1, ensure_ascii=False)
        f.write('\n')
    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))
    print(f'vocab {V}; wrote {OUT} ({total / 2**20:.2f} MiB)')


if __name__ == '__main__':
    main()

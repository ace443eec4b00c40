"""PyTorch twin of models/gpt.cpp: the same layers, parameter names and initialisation, so
that a ringtrain gpt checkpoint's state_dict loads into it unchanged and the DDP benchmark
(bench/train_vs_ddp/ddp_train.py --model gpt) trains the same network.

Also reads `ringtrain prepare-text` token shards (data/token_shards.h: a 32-byte header with
magic "RTTOKENS", version 1, bytes per token and the token count, then the tokens).
"""
import math
import struct

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class LayerNorm(nn.Module):
    def __init__(self, dim, bias=True):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim)) if bias else None

    def forward(self, x):
        return F.layer_norm(x, self.weight.shape, self.weight, self.bias, 1e-5)


class CausalSelfAttention(nn.Module):
    def __init__(self, n_embd, n_head, n_layer, bias=True):
        super().__init__()
        self.n_head = n_head
        self.c_attn = nn.Linear(n_embd, 3 * n_embd, bias=bias)
        self.c_proj = nn.Linear(n_embd, n_embd, bias=bias)
        init_linear(self.c_attn, 0.02)
        init_linear(self.c_proj, 0.02 / math.sqrt(2 * n_layer))

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = self.c_attn(x).split(c, 2)
        q, k, v = (z.view(b, t, self.n_head, c // self.n_head).transpose(1, 2) for z in (q, k, v))
        att = q @ k.transpose(-2, -1) / math.sqrt(c // self.n_head)
        future = torch.ones(t, t, dtype=torch.bool).triu(1)
        att = torch.softmax(att.masked_fill(future, float("-inf")), -1)
        return self.c_proj((att @ v).transpose(1, 2).contiguous().view(b, t, c))


class Mlp(nn.Module):
    def __init__(self, n_embd, n_layer, bias=True):
        super().__init__()
        self.c_fc = nn.Linear(n_embd, 4 * n_embd, bias=bias)
        self.c_proj = nn.Linear(4 * n_embd, n_embd, bias=bias)
        init_linear(self.c_fc, 0.02)
        init_linear(self.c_proj, 0.02 / math.sqrt(2 * n_layer))

    def forward(self, x):
        return self.c_proj(F.gelu(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self, n_embd, n_head, n_layer, bias=True):
        super().__init__()
        self.ln_1 = LayerNorm(n_embd, bias)
        self.attn = CausalSelfAttention(n_embd, n_head, n_layer, bias)
        self.ln_2 = LayerNorm(n_embd, bias)
        self.mlp = Mlp(n_embd, n_layer, bias)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """models/gpt.cpp (dropout 0): token + position embeddings, pre-LN blocks, a tied head."""

    def __init__(self, n_layer=2, n_head=4, n_embd=128, block_size=64, vocab_size=256, bias=True):
        super().__init__()
        self.transformer = nn.Module()
        self.transformer.wte = nn.Embedding(vocab_size, n_embd)
        self.transformer.wpe = nn.Embedding(block_size, n_embd)
        self.transformer.h = nn.ModuleList(Block(n_embd, n_head, n_layer, bias)
                                           for _ in range(n_layer))
        self.transformer.ln_f = LayerNorm(n_embd, bias)
        with torch.no_grad():
            self.transformer.wte.weight.normal_(0.0, 0.02)
            self.transformer.wpe.weight.normal_(0.0, 0.02)

    def forward(self, idx):
        t = idx.size(1)
        x = self.transformer.wte(idx) + self.transformer.wpe(torch.arange(t))
        for block in self.transformer.h:
            x = block(x)
        return F.linear(self.transformer.ln_f(x), self.transformer.wte.weight)


def init_linear(layer, std):
    with torch.no_grad():
        layer.weight.normal_(0.0, std)
        if layer.bias is not None:
            layer.bias.zero_()


def read_token_shard(path):
    """The tokens of one `ringtrain prepare-text` shard, as an int64 tensor."""
    with open(path, "rb") as f:
        header = f.read(32)
        magic, version, width, count = struct.unpack("<8sIIQ", header[:24])
        if magic != b"RTTOKENS" or version != 1 or width not in (2, 4):
            raise ValueError(f"{path}: not a ringtrain token shard (version 1)")
        tokens = np.frombuffer(f.read(), dtype=np.uint16 if width == 2 else np.uint32)
    if tokens.size != count:
        raise ValueError(f"{path}: the header says {count} tokens, the file holds {tokens.size}")
    return torch.from_numpy(tokens.astype(np.int64))

"""torch.nn twins of ringtrain's built-in Fashion-MNIST models (models/fashion.cpp), and a
reader for the IDX files they train on.

The twins have the same submodule names as ringtrain's models (conv1, fc1, ...), so a
checkpoint exported by `ringtrain export` loads into them unchanged:

    import sys
    sys.path.insert(0, "<ringtrain checkout>/examples/python")
    from fashion_models import MODELS
    model = MODELS["fashion_cnn"]()
    model.load_state_dict(torch.load("model.pt"))

Used by tests/e2e/export_interop.py (the interop check), bench/train_vs_ddp/ddp_train.py
(the PyTorch DDP side of the throughput comparison) and bench/gpu/pytorch_fashion_cnn.py.
"""
import gzip
import struct

import torch
import torch.nn as nn
import torch.nn.functional as F


class FashionMlp(nn.Module):
    """fashion_mlp: 784-256-128-10 with ReLU."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 256)
        self.fc2 = nn.Linear(256, 128)
        self.fc3 = nn.Linear(128, 10)

    def forward(self, x):
        x = x.reshape(x.size(0), 784)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


class FashionCnn(nn.Module):
    """fashion_cnn: two 3x3 conv + 2x2 max-pool stages, then two linear layers."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.fc1 = nn.Linear(64 * 7 * 7, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.relu(self.fc1(x.flatten(1)))
        return self.fc2(x)


MODELS = {"fashion_mlp": FashionMlp, "fashion_cnn": FashionCnn}


def read_idx(path):
    """An IDX file (gzipped if its name ends in .gz) as a uint8 tensor of its shape."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = struct.unpack(">" + "I" * dims, data[4 : 4 + 4 * dims])
    return torch.frombuffer(bytearray(data[4 + 4 * dims :]), dtype=torch.uint8).reshape(shape)

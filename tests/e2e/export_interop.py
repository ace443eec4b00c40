"""Checks ringtrain's exports from Python, independently of ringtrain's code.

* Parses the safetensors file with the reader below, written from the format's
  specification (8-byte little-endian header length, JSON header, contiguous data), and
  checks the layout rules: 8-byte aligned data, space padding, offsets that cover the
  buffer with no holes or overlaps, "__metadata__" holding the config.
* Loads the safetensors file again with the real `safetensors` package
  (safetensors.torch.load_file, and safe_open for the metadata) and checks it agrees.
* Loads the torch export with torch.load (weights_only=True, torch 2.x's safe default) and
  checks it holds the same tensors.
* Builds the torch.nn equivalent of ringtrain's fashion_cnn (examples/python/fashion_models.py,
  written from models/fashion.cpp with PyTorch's own layers), loads the
  weights strictly, reads the Fashion-MNIST test images itself, normalises them with the
  exported config's mean/std, and compares its logits to `ringtrain predict`'s (1e-5).
"""

import argparse
import json
import os
import re
import struct
import sys

import torch
from safetensors import safe_open
from safetensors.torch import load_file

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "examples", "python"))
from fashion_models import FashionCnn, read_idx  # noqa: E402  (the torch.nn twin)

DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16,
    "BF16": torch.bfloat16, "I64": torch.int64, "I32": torch.int32, "I16": torch.int16,
    "I8": torch.int8, "U8": torch.uint8, "BOOL": torch.bool,
}


def check(condition, message):
    if not condition:
        sys.exit("FAIL: " + message)


def read_safetensors(path):
    blob = open(path, "rb").read()
    check(len(blob) >= 8, "file shorter than the 8-byte header length")
    (n,) = struct.unpack("<Q", blob[:8])
    check(8 + n <= len(blob), "header length points past the end of the file")
    check((8 + n) % 8 == 0, "tensor data is not 8-byte aligned")
    header_text = blob[8:8 + n].decode("utf-8")
    check(header_text.startswith("{"), "header does not start with '{'")
    stripped = header_text.rstrip(" ")
    check(stripped.endswith("}"), "header padding is not spaces only")
    header = json.loads(stripped)
    data = blob[8 + n:]
    metadata = header.pop("__metadata__", {})
    check(all(isinstance(v, str) for v in metadata.values()), "metadata values must be strings")
    tensors = {}
    spans = []
    for name, info in header.items():
        check(set(info) == {"dtype", "shape", "data_offsets"}, f"{name}: unexpected keys {info}")
        dtype = DTYPES[info["dtype"]]
        begin, end = info["data_offsets"]
        count = 1
        for d in info["shape"]:
            count *= d
        itemsize = torch.empty((), dtype=dtype).element_size()
        check(end - begin == count * itemsize, f"{name}: data_offsets do not match shape")
        raw = bytearray(data[begin:end])
        t = torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype)
        tensors[name] = t.reshape(info["shape"])
        spans.append((begin, end))
    spans.sort()
    position = 0
    for begin, end in spans:
        check(begin == position, "data has a hole or an overlap")
        position = end
    check(position == len(data), "data is not fully indexed")
    return tensors, metadata


def safetensors_version():
    import safetensors
    return safetensors.__version__


def config_value(config, section, key):
    match = re.search(rf"^{section}:\n(?:  .*\n)*?  {key}: (.*)$", config, re.MULTILINE)
    check(match is not None, f"{section}.{key} not in the exported config")
    return match.group(1).strip()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--safetensors", required=True)
    parser.add_argument("--torch", required=True)
    parser.add_argument("--predictions", required=True)
    parser.add_argument("--data", required=True)
    args = parser.parse_args()

    tensors, metadata = read_safetensors(args.safetensors)
    config = metadata.get("config", "")
    check(config_value(config, "model", "name") == "fashion_cnn", "metadata config is not the run's")
    reference = load_file(args.safetensors)
    check(sorted(reference) == sorted(tensors),
          f"safetensors.torch.load_file names {sorted(reference)} != {sorted(tensors)}")
    for name, t in tensors.items():
        check(reference[name].dtype == t.dtype and torch.equal(reference[name], t),
              f"{name}: safetensors.torch.load_file disagrees with the spec reader")
    with safe_open(args.safetensors, framework="pt") as f:
        check(f.metadata() == metadata, "safe_open metadata differs from the spec reader's")
    print(f"safetensors {safetensors_version()}: load_file and safe_open agree on "
          f"{len(reference)} tensors and the metadata")
    state = torch.load(args.torch, weights_only=True)
    check(list(state) == list(tensors), f"torch export names {list(state)} != {list(tensors)}")
    for name, t in tensors.items():
        check(torch.equal(state[name], t), f"{name} differs between the two exports")
    print(f"safetensors: {len(tensors)} tensors, header and layout per spec; torch export equal")

    for source, weights in (("safetensors", tensors), ("torch", state)):
        model = FashionCnn()
        model.load_state_dict(weights, strict=True)
        model.eval()
        predictions = [json.loads(line) for line in open(args.predictions)]
        count = len(predictions)
        images = read_idx(f"{args.data}/t10k-images-idx3-ubyte.gz")[:count]
        labels = read_idx(f"{args.data}/t10k-labels-idx1-ubyte.gz")[:count]
        mean = float(config_value(config, "data", "mean"))
        std = float(config_value(config, "data", "std"))
        x = images.to(torch.float32).div_(255.0).sub_(mean).div_(std).unsqueeze(1)
        with torch.no_grad():
            logits = model(x).double()
        expected = torch.tensor([p["logits"] for p in predictions], dtype=torch.float64)
        diff = (logits - expected).abs().max().item()
        check(diff <= 1e-5, f"{source}: logits differ from ringtrain predict by {diff}")
        for i, p in enumerate(predictions):
            check(p["index"] == i and p["label"] == int(labels[i]), f"sample {i}: index/label")
            check(p["predicted"] == int(expected[i].argmax()), f"sample {i}: predicted class")
        agree = sum(int(logits[i].argmax()) == p["predicted"] for i, p in enumerate(predictions))
        print(f"{source}: {count} logits reproduced, max abs difference {diff:.2e}, "
              f"{agree}/{count} predicted classes agree")
    print("export interop OK")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""PyTorch baseline for ringtrain's GPU run: the same fashion_cnn, data, optimizer and
schedule as configs/fashion_mnist_cnn.yaml on one GPU, timed the way ringtrain times itself.

Same work per step as ringtrain's trainer: the batch is gathered and normalised on the CPU,
copied to the GPU, forward + cross-entropy + backward, the loss read back (.item()), the
global gradient norm read back, the learning rate set, an SGD step. The epoch drops the
remainder (floor(60000 / 64) = 937 steps) and ends with a full test-set evaluation; wall time
covers training and that evaluation, like ringtrain's `summary` record.

Prints one JSON line: {"kind":"pytorch_summary","steps":...,"wall_s":...,"samples_per_s":...,
"train_s":...,"test_accuracy":...}.
"""
import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "examples", "python"))
from fashion_models import FashionCnn, read_idx  # noqa: E402  (models/fashion.cpp's twin)


def load_split(data_dir, prefix):
    def find(stem):
        for name in (stem + ".gz", stem):
            path = os.path.join(data_dir, name)
            if os.path.exists(path):
                return path
        sys.exit(f"missing {stem}[.gz] in {data_dir}")

    images = read_idx(find(f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(find(f"{prefix}-labels-idx1-ubyte"))
    return images, labels.to(torch.int64)


def scheduled_lr(base, step, total, warmup, min_lr=0.0):
    """trainer/optim/optimizer.cpp's cosine schedule with linear warm-up."""
    if warmup > 0 and step < warmup:
        return base * (step + 1) / warmup
    span = max(1, total - warmup)
    progress = min(1.0, (step - warmup) / span)
    return min_lr + 0.5 * (base - min_lr) * (1.0 + math.cos(math.pi * progress))


def normalise(images_u8, mean, std):
    return images_u8.to(torch.float32).div_(255.0).sub_(mean).div_(std).unsqueeze(1)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--eval-batch-size", type=int, default=1000)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--weight-decay", type=float, default=0.0005)
    p.add_argument("--warmup-steps", type=int, default=100)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--max-steps", type=int, default=0, help="stop early (smoke tests)")
    p.add_argument("--device", default="cuda")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    args = p.parse_args()

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("pytorch_fashion_cnn: CUDA is not available to this PyTorch")
    torch.manual_seed(args.seed)
    mean, std = 0.2860, 0.3530
    train_x, train_y = load_split(args.data, "train")
    test_x, test_y = load_split(args.data, "t10k")

    model = FashionCnn().to(device)
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum,
                          weight_decay=args.weight_decay)
    steps_per_epoch = train_x.shape[0] // args.batch_size
    total = steps_per_epoch * args.epochs
    if args.max_steps > 0:
        total = min(total, args.max_steps)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16,
                              enabled=args.precision == "bf16")

    # Warm-up outside the timed region (CUDA context, cuDNN autotuning), as ringtrain's set-up
    # also happens before its clock starts.
    with autocast:
        F.cross_entropy(model(normalise(train_x[:args.batch_size], mean, std).to(device)),
                        train_y[:args.batch_size].to(device)).backward()
    opt.zero_grad(set_to_none=False)
    if device.type == "cuda":
        torch.cuda.synchronize()

    start = time.perf_counter()
    step = 0
    generator = torch.Generator().manual_seed(args.seed)
    for _epoch in range(args.epochs):
        order = torch.randperm(train_x.shape[0], generator=generator)
        model.train()
        for k in range(min(steps_per_epoch, total - step)):
            idx = order[k * args.batch_size : (k + 1) * args.batch_size]
            inputs = normalise(train_x.index_select(0, idx), mean, std).to(device)
            targets = train_y.index_select(0, idx).to(device)
            with autocast:
                loss = F.cross_entropy(model(inputs), targets)
            loss.backward()
            loss_value = loss.item()
            norm = torch.stack([q.grad.norm() for q in model.parameters()]).norm().item()
            if not (math.isfinite(loss_value) and math.isfinite(norm)):
                sys.exit(f"non-finite loss or gradient at step {step}")
            for group in opt.param_groups:
                group["lr"] = scheduled_lr(args.lr, step, total, args.warmup_steps)
            opt.step()
            opt.zero_grad(set_to_none=False)
            step += 1
    if device.type == "cuda":
        torch.cuda.synchronize()
    train_s = time.perf_counter() - start

    model.eval()
    correct = 0
    with torch.no_grad(), autocast:
        for s in range(0, test_x.shape[0], args.eval_batch_size):
            inputs = normalise(test_x[s : s + args.eval_batch_size], mean, std).to(device)
            logits = model(inputs)
            correct += int((logits.argmax(-1).cpu() == test_y[s : s + args.eval_batch_size]).sum())
    wall_s = time.perf_counter() - start
    print(json.dumps({
        "kind": "pytorch_summary", "torch": torch.__version__, "device": str(device),
        "precision": args.precision, "steps": step, "train_s": round(train_s, 3),
        "wall_s": round(wall_s, 3),
        "samples_per_s": round(step * args.batch_size / wall_s, 1),
        "test_accuracy": correct / test_x.shape[0],
    }))


if __name__ == "__main__":
    main()

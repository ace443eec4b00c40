#!/usr/bin/env python3
"""PyTorch DDP (gloo) twin of `ringtrain train` for the throughput comparison.

Same models (examples/python/fashion_models.py and gpt_model.py: module names as
models/fashion.cpp and models/gpt.cpp), same data files (Fashion-MNIST; for gpt a
`ringtrain prepare-text` directory, --token-dir), same per-rank batch, same normalisation,
same optimizer (gpt: AdamW and gradient clipping, as configs/lm_fortunes.yaml). Run under mpirun like ringtrain, one process per
rank: it reads OMPI_COMM_WORLD_RANK/SIZE and rendezvous over TCP at --master-addr
(127.0.0.1 by default).

Prints one JSON line on rank 0: {"impl": "ddp", "samples_per_s": ..., ...}, measured like
ringtrain's metrics: global samples of the steps after the warm-up / their wall time.
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "examples", "python"))
from fashion_models import MODELS, read_idx  # noqa: E402  (models/fashion.cpp's twins)
from gpt_model import GPT, read_token_shard  # noqa: E402  (models/gpt.cpp's twin)

# configs/lm_fortunes.yaml's model
GPT_OPTIONS = dict(n_layer=2, n_head=4, n_embd=96, block_size=64, vocab_size=256)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="fashion_cnn", choices=sorted(MODELS) + ["gpt"])
    ap.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--batch-size", type=int, default=64, help="per rank")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=50, help="steps not timed")
    ap.add_argument("--threads", type=int, default=1, help="intra-op threads per rank")
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--weight-decay", type=float, default=0.0)
    ap.add_argument("--token-dir", help="gpt: a `ringtrain prepare-text` output directory")
    ap.add_argument("--port", type=int, default=29517)
    ap.add_argument("--master-addr", default="127.0.0.1",
                    help="rank 0's host (MASTER_ADDR): its address on the hosts' network")
    args = ap.parse_args()

    rank = int(os.environ.get("OMPI_COMM_WORLD_RANK", "0"))
    world = int(os.environ.get("OMPI_COMM_WORLD_SIZE", "1"))
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://{args.master_addr}:{args.port}",
                            rank=rank, world_size=world)

    if args.model == "gpt":
        block = GPT_OPTIONS["block_size"]
        tokens = read_token_shard(os.path.join(args.token_dir, "train_000.bin"))
        windows = (tokens.numel() - 1) // block  # data/token_shards.h's windows
        offsets = torch.arange(block + 1)

        def batch(idx):
            w = tokens[idx.unsqueeze(1) * block + offsets]
            return w[:, :-1], w[:, 1:]
        samples = windows
    else:
        images, labels, samples = load_fashion(args.data_dir)
        mean, std = 0.2860, 0.3530

        def batch(idx):
            x = images.index_select(0, idx).float().div_(255.0).sub_(mean).div_(std)
            return x.unsqueeze(1), labels.index_select(0, idx)

    torch.manual_seed(42)
    # DDP's best settings for this workload: gradients are views into its buckets (no copy),
    # and a static graph lets it skip the per-step search for unused parameters.
    net = GPT(**GPT_OPTIONS) if args.model == "gpt" else MODELS[args.model]()
    model = DDP(net, gradient_as_bucket_view=True, static_graph=True)
    # (the constructor broadcasts rank 0's parameters)
    if args.model == "gpt":
        opt = torch.optim.AdamW(model.parameters(), lr=0.003, betas=(0.9, 0.99),
                                weight_decay=0.01)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum,
                              weight_decay=args.weight_decay)

    steps_per_epoch = samples // (args.batch_size * world)
    generator = torch.Generator().manual_seed(42)
    order = None
    start = None
    for step in range(args.steps):
        in_epoch = step % steps_per_epoch
        if in_epoch == 0:  # this rank's shard of a fresh permutation, as a DistributedSampler
            order = torch.randperm(samples, generator=generator)[rank::world]
        if step == args.warmup:
            dist.barrier()
            start = time.perf_counter()
        idx = order[in_epoch * args.batch_size : (in_epoch + 1) * args.batch_size]
        x, y = batch(idx)
        out = model(x)
        loss = F.cross_entropy(out.reshape(-1, out.size(-1)), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        if args.model == "gpt":
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        loss_value = loss.item()  # ringtrain reads its loss every step too
    dist.barrier()
    elapsed = time.perf_counter() - start
    timed = args.steps - args.warmup
    if rank == 0:
        print(json.dumps({"impl": "ddp", "model": args.model, "np": world,
                          "steps": timed, "wall_s": elapsed, "final_loss": loss_value,
                          "samples_per_s": timed * args.batch_size * world / elapsed}))
    dist.destroy_process_group()


def load_fashion(data_dir):
    def path(stem):
        p = os.path.join(data_dir, stem)
        return p + ".gz" if os.path.exists(p + ".gz") else p

    images = read_idx(path("train-images-idx3-ubyte"))
    labels = read_idx(path("train-labels-idx1-ubyte")).long()
    return images, labels, images.size(0)


if __name__ == "__main__":
    main()

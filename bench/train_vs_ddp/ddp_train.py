#!/usr/bin/env python3
"""PyTorch DDP (gloo) twin of `ringtrain train` for the throughput comparison.

Same models (examples/python/fashion_models.py: module names as models/fashion.cpp), same Fashion-MNIST files, same per-rank
batch, same normalisation, same optimizer. Run under mpirun like ringtrain, one process per
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="fashion_cnn", choices=sorted(MODELS))
    ap.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--batch-size", type=int, default=64, help="per rank")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=50, help="steps not timed")
    ap.add_argument("--threads", type=int, default=1, help="intra-op threads per rank")
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--weight-decay", type=float, default=0.0)
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

    def path(stem):
        p = os.path.join(args.data_dir, stem)
        return p + ".gz" if os.path.exists(p + ".gz") else p

    images = read_idx(path("train-images-idx3-ubyte"))
    labels = read_idx(path("train-labels-idx1-ubyte")).long()
    mean, std = 0.2860, 0.3530

    torch.manual_seed(42)
    # DDP's best settings for this workload: gradients are views into its buckets (no copy),
    # and a static graph lets it skip the per-step search for unused parameters.
    model = DDP(MODELS[args.model](), gradient_as_bucket_view=True, static_graph=True)
    # (the constructor broadcasts rank 0's parameters)
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum,
                          weight_decay=args.weight_decay)

    steps_per_epoch = images.size(0) // (args.batch_size * world)
    generator = torch.Generator().manual_seed(42)
    order = None
    start = None
    for step in range(args.steps):
        in_epoch = step % steps_per_epoch
        if in_epoch == 0:  # this rank's shard of a fresh permutation, as a DistributedSampler
            order = torch.randperm(images.size(0), generator=generator)[rank::world]
        if step == args.warmup:
            dist.barrier()
            start = time.perf_counter()
        idx = order[in_epoch * args.batch_size : (in_epoch + 1) * args.batch_size]
        x = images.index_select(0, idx).float().div_(255.0).sub_(mean).div_(std).unsqueeze(1)
        y = labels.index_select(0, idx)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
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


if __name__ == "__main__":
    main()

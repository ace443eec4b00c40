#!/usr/bin/env python3
"""Training throughput of ringtrain against PyTorch DDP (gloo), side by side.

For every repeat, model and world size, runs `ringtrain train` and ddp_train.py back to back
(alternating which goes first), one intra-op thread per rank, per-rank batch 64, the same
Fashion-MNIST data. Reports medians of samples/s, the ratio ringtrain / DDP, and scaling
efficiency (samples/s at np 2 over 2 x samples/s at np 1).

Both are timed the same way: the global samples of the steps after a warm-up interval divided
by their wall time (ringtrain: its metrics.jsonl train records, one per log interval; DDP:
its own timer). The steps stay within one epoch at np 2, so no evaluation falls inside.
With --bind core (the default), np 1 runs alternate between cores 0 and 1 by repeat (see
mpirun()); np 2 binds one rank to each core.

  .venv/bin/python bench/train_vs_ddp/run.py --ringtrain build/ringtrain [--repeats 5]

The DDP peer runs under the Python that runs this script (the venv's torch 2.x, from
launch/setup.sh).
      [--models fashion_cnn,fashion_mlp] [--nps 1,2] [--blas openblas|reference]
      [--variant NAME:section.key=value,...] [--binary NAME:PATH] [--ceiling] [--csv results.csv]
"""
import argparse
import csv
import ctypes
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CONFIGS = {"fashion_cnn": "configs/fashion_mnist_cnn.yaml",
           "fashion_mlp": "configs/fashion_mnist_mlp.yaml"}
# Optimizer settings of those configs, for the DDP twin.
DDP_ARGS = {"fashion_cnn": ["--lr", "0.05", "--momentum", "0.9", "--weight-decay", "0.0005"],
            "fashion_mlp": ["--lr", "0.05", "--momentum", "0.9", "--weight-decay", "0"]}
# (steps, log interval): steps < 468 = one epoch at np 2 with batch 64; the first interval is
# the warm-up.
STEPS = {"fashion_cnn": (300, 50), "fashion_mlp": (450, 75)}
TARGET_RATIO = {"fashion_cnn": 1.2, "fashion_mlp": 1.5}  # against DDP 2.x (issue 17)
TARGET_EFFICIENCY = {"fashion_cnn": 0.95, "fashion_mlp": 0.9}
REFERENCE_BLAS_DIR = "/usr/lib/x86_64-linux-gnu/blas"  # Debian's reference libblas.so.3


def openblas_kernels():
    """(kernels the system's OpenBLAS loads, kernels to run instead or None): the choice
    ringtrain makes for itself at start-up (trainer/host/blas_kernels.h). Debian 12's OpenBLAS
    falls back to its generic Prescott kernels on CPUs it does not know; ringtrain then
    restarts with OPENBLAS_CORETYPE set, and the peer must run with the same kernels."""
    try:
        lib = ctypes.CDLL("libblas.so.3")
        lib.openblas_get_corename.restype = ctypes.c_char_p
        loaded = lib.openblas_get_corename().decode()
    except (OSError, AttributeError):
        return None, None
    if loaded != "Prescott":
        return loaded, None
    with open("/proc/cpuinfo") as f:
        flags = set(next((l.split(":", 1)[1].split() for l in f if l.startswith("flags")), []))
    if {"avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"} <= flags:
        return loaded, "SkylakeX"
    if {"avx2", "fma"} <= flags:
        return loaded, "Haswell"
    return loaded, None


def environment(blas):
    env = dict(os.environ)
    env.update({"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
                "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    if blas == "reference":
        env["LD_LIBRARY_PATH"] = REFERENCE_BLAS_DIR + ":" + env.get("LD_LIBRARY_PATH", "")
    elif "OPENBLAS_CORETYPE" not in env:
        _, better = openblas_kernels()
        if better:  # ringtrain would pick these for itself; DDP gets the same
            env["OPENBLAS_CORETYPE"] = better
    return env


LAUNCHER = None  # --launcher: a command that stands for mpirun (hosts of another network)


def mpirun(np_, bind, rep=0):
    """mpirun with binding, or --launcher's command with -np N. A single rank bound to a core would always get core 0, and a VM's
    cores need not be equally fast (core 1 of the development machine ran fashion_mlp 3-14%
    faster), while np 2 uses both: so np 1 runs take core rep % 2, alternating by repeat."""
    if LAUNCHER:
        return LAUNCHER + ["-np", str(np_)]
    if np_ == 1 and bind == "core" and (os.cpu_count() or 1) > 1:
        return ["taskset", "-c", str(rep % 2), "mpirun", "--bind-to", "none", "-np", "1"]
    return ["mpirun", "--oversubscribe", "--bind-to", bind, "-np", str(np_)]


def ringtrain_command(args, model, np_, sets, run_dir, mpi_prefix, binary=None):
    steps, interval = STEPS[model]
    cmd = mpi_prefix + [binary or args.ringtrain, "train", "--config", os.path.join(ROOT, CONFIGS[model]),
                        "--run-dir", run_dir]
    for s in [f"train.max_steps={steps}", f"train.log_every={interval}", "train.threads=1",
              "train.epochs=1000", "checkpoint.enabled=false"] + sets:
        cmd += ["--set", s]
    return cmd


PHASES = ["data_ms", "forward_backward_ms", "sync_wait_ms", "update_ms"]


def ringtrain_train_records(run_dir):
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        records = [json.loads(line) for line in f if line.strip()]
    return [r for r in records if r["kind"] == "train"][1:]  # drop the warm-up interval


def ringtrain_samples_per_s(model, np_, run_dir):
    _, interval = STEPS[model]
    train = ringtrain_train_records(run_dir)
    seconds = sum(interval * 64 * np_ / r["samples_per_s"] for r in train)
    return len(train) * interval * 64 * np_ / seconds


def ringtrain_phases(run_dir):
    """Where a step went: ms per step of each phase in the train records (mean over ranks),
    averaged over the log intervals."""
    train = ringtrain_train_records(run_dir)
    phases = {k: statistics.mean(r[k] for r in train) for k in PHASES}
    if all("slowest_rank_lead_ms" in r for r in train):  # np > 1
        phases["lead_ms"] = statistics.mean(r["slowest_rank_lead_ms"] for r in train)
    return phases


def run_ringtrain(args, model, np_, sets, env, rep, binary=None):
    run_dir = tempfile.mkdtemp(prefix="ringtrain-bench-")
    try:
        cmd = ringtrain_command(args, model, np_, sets, run_dir, mpirun(np_, args.bind, rep),
                                binary)
        subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, timeout=900)
        return ringtrain_samples_per_s(model, np_, run_dir), ringtrain_phases(run_dir)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def run_ringtrain_independent_pair(args, model, env):
    """Two single-rank runs at once, one pinned to each core, no communication: what np 2
    could reach if synchronisation were free. Returns each run's samples/s (core 0, core 1)."""
    dirs = [tempfile.mkdtemp(prefix="ringtrain-bench-") for _ in range(2)]
    try:
        procs = [subprocess.Popen(["taskset", "-c", str(core)] +
                                  ringtrain_command(args, model, 1, [], d,
                                                    mpirun(1, "none")),
                                  env=env, stdout=subprocess.DEVNULL)
                 for core, d in enumerate(dirs)]
        for p in procs:
            if p.wait(timeout=900) != 0:
                raise RuntimeError(f"independent ringtrain run failed ({p.returncode})")
        return [ringtrain_samples_per_s(model, 1, d) for d in dirs]
    finally:
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)


def run_ddp(args, model, np_, env, rep):
    steps, interval = STEPS[model]
    cmd = mpirun(np_, args.bind, rep) + [sys.executable, os.path.join(HERE, "ddp_train.py"),
                                    "--model", model, "--steps", str(steps), "--warmup",
                                    str(interval), "--threads", "1",
                                    "--master-addr", args.ddp_master] + DDP_ARGS[model]
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True, timeout=900)
    line = [l for l in out.stdout.splitlines() if l.startswith("{")][-1]
    return json.loads(line)["samples_per_s"]


def machine_info():
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}"


def print_phases(models, nps, phases, repeats):
    """ringtrain's step phases at np 1 and np 2 (its metrics.jsonl), and what each phase's
    growth from np 1 to np 2 costs the efficiency: a share of the np-2 step."""
    print("\nwhere ringtrain's step goes: ms per step, mean over ranks, median over repeats;"
          "\nlast columns: each phase's growth from np 1 to np 2 as a share of the np-2 step"
          " (the efficiency it costs)")
    names = ["data", "fwd+bwd", "sync wait", "update", "other"]
    leads = {}
    print(f"{'model':<12}{'np':>3}{'step':>8}" + "".join(f"{n:>10}" for n in names) +
          "".join(f"{'d ' + n:>12}" for n in names))
    for model in models:
        rows = {}
        for np_ in nps:
            reps = [phases[model, np_, rep] for rep in range(repeats)]
            row = {k: statistics.median(r[k] for r in reps) for k in PHASES}
            step = statistics.median(r["step_ms"] for r in reps)
            row["other"] = step - sum(row[k] for k in PHASES)
            rows[np_] = (step, [row[k] for k in PHASES] + [row["other"]])
            print(f"{model:<12}{np_:>3}{step:8.2f}" + "".join(f"{v:10.2f}" for v in rows[np_][1]),
                  end="" if np_ == 2 and 1 in rows else "\n")
        if 1 in rows and 2 in rows:
            step2 = rows[2][0]
            print("".join(f"{(b - a) / step2:12.1%}" for a, b in zip(rows[1][1], rows[2][1])))
            leads[model] = statistics.median(phases[model, 2, rep]["lead_ms"]
                                             for rep in range(repeats))
    for model, lead in leads.items():
        print(f"{model}: at np 2 the slower rank's work per step exceeded the other's by "
              f"{lead:.2f} ms (slowest_rank_lead_ms), which the other rank spends in sync wait")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--ringtrain", required=True, help="path to the ringtrain binary")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--models", default="fashion_cnn,fashion_mlp")
    ap.add_argument("--nps", default="1,2")
    ap.add_argument("--blas", default="openblas", choices=["openblas", "reference"],
                    help="reference: put Debian's reference libblas.so.3 first on the path")
    ap.add_argument("--bind", default="core", help="mpirun --bind-to (core | none)")
    ap.add_argument("--variant", action="append", default=[],
                    help="extra ringtrain column NAME:key=value,key=value (e.g. "
                         "no-overlap:distributed.overlap=false)")
    ap.add_argument("--binary", action="append", default=[],
                    help="extra ringtrain column NAME:PATH, another build of ringtrain run the "
                         "same way (e.g. libtorch-1.13:build-1.13/ringtrain)")
    ap.add_argument("--no-ddp", action="store_true", help="ringtrain variants only")
    ap.add_argument("--ceiling", action="store_true",
                    help="also run two independent single-rank jobs at once (one per core, no "
                         "communication) per repeat: the np-2 throughput free synchronisation "
                         "would give on this machine")
    ap.add_argument("--csv", help="write every run here")
    ap.add_argument("--launcher",
                    help="the command that starts N ranks in place of `mpirun --bind-to B`, "
                         "given -np N after it (bench/cluster/train_vs_ddp.sh: mpirun on "
                         "another host with its --host list)")
    ap.add_argument("--ddp-master", default="127.0.0.1",
                    help="DDP's MASTER_ADDR: rank 0's host (with --launcher: its name)")
    args = ap.parse_args()
    global LAUNCHER
    LAUNCHER = args.launcher.split() if args.launcher else None
    args.ringtrain = os.path.abspath(args.ringtrain)

    variants = [("ringtrain", [])]
    for v in args.variant:
        name, _, sets = v.partition(":")
        variants.append((name, [s for s in sets.split(",") if s]))
    binaries = {}
    for b in args.binary:
        name, _, path = b.partition(":")
        binaries[name] = os.path.abspath(path)
        variants.append((name, []))
    impls = [name for name, _ in variants] + ([] if args.no_ddp else ["ddp"])
    models = args.models.split(",")
    nps = [int(n) for n in args.nps.split(",")]
    env = environment(args.blas)

    kernels = env.get("OPENBLAS_CORETYPE", "as loaded") if args.blas == "openblas" else "-"
    print(f"# machine: {machine_info()}; blas {args.blas} (kernels {kernels}); "
          f"bind-to {args.bind}", flush=True)
    runs = []  # (impl, model, np, repeat, samples_per_s)
    phases = {}  # (model, np, repeat) -> ringtrain's step phases, ms per step
    began = time.time()
    for rep in range(args.repeats):
        for model in models:
            for np_ in nps:
                order = list(impls) if rep % 2 == 0 else list(reversed(impls))
                for impl in order:
                    if impl == "ddp":
                        sps = run_ddp(args, model, np_, env, rep)
                    else:
                        sps, ph = run_ringtrain(args, model, np_, dict(variants)[impl], env, rep,
                                                binaries.get(impl))
                        if impl == "ringtrain":
                            phases[model, np_, rep] = dict(ph, step_ms=64e3 * np_ / sps)
                    runs.append((impl, model, np_, rep, sps))
                    print(f"  rep {rep} {model} np{np_} {impl:>12}: {sps:8.0f} samples/s",
                          flush=True)
            if args.ceiling:
                pair = run_ringtrain_independent_pair(args, model, env)
                runs.append(("independent", model, 2, rep, sum(pair)))
                # Ranks in lockstep go at the slower core's pace.
                runs.append(("lockstep", model, 2, rep, 2 * min(pair)))
                print(f"  rep {rep} {model} 2 x np1 independent: {sum(pair):8.0f} samples/s "
                      f"(core 0 {pair[0]:.0f}, core 1 {pair[1]:.0f})", flush=True)
    print(f"# {len(runs)} runs in {time.time() - began:.0f} s; load now "
          f"{os.getloadavg()[0]:.2f}")

    if args.csv:
        with open(args.csv, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["impl", "model", "np", "repeat", "samples_per_s"])
            w.writerows(runs)

    med = {}
    for impl in impls:
        for model in models:
            for np_ in nps:
                vals = [r[4] for r in runs if r[:3] == (impl, model, np_)]
                med[impl, model, np_] = statistics.median(vals)

    cols = "".join(f"{i:>12}" for i in impls)
    ratio_cols = "".join(f"{i + '/ddp':>16}" for i, _ in variants) if "ddp" in impls else ""
    print(f"\nmedian samples/s over {args.repeats} repeats (blas {args.blas})")
    print(f"{'model':<12}{'np':>3}{cols}{ratio_cols}")
    for model in models:
        for np_ in nps:
            line = f"{model:<12}{np_:>3}" + "".join(f"{med[i, model, np_]:12.0f}" for i in impls)
            if "ddp" in impls:
                for name, _ in variants:
                    r = med[name, model, np_] / med["ddp", model, np_]
                    mark = ""
                    if np_ == 2:
                        mark = " ok" if r >= TARGET_RATIO[model] else " MISS"
                    line += f"{r:13.2f}{mark:<3}"
            print(line)
    if 1 in nps and 2 in nps:
        print("\nscaling efficiency np2 / (2 x np1); paired: median over repeats of each "
              "repeat's own np2 / (2 x np1)")
        print(f"{'model':<12}" + "".join(f"{i:>12}" for i in impls) +
              f"{'paired':>12}      target")
        for model in models:
            line = f"{model:<12}"
            for impl in impls:
                line += f"{med[impl, model, 2] / (2 * med[impl, model, 1]):12.2f}"
            by_rep = {(n, r[3]): r[4] for r in runs for n in (1, 2)
                      if r[:3] == ("ringtrain", model, n)}
            paired = statistics.median(by_rep[2, rep] / (2 * by_rep[1, rep])
                                       for rep in range(args.repeats))
            eff = med["ringtrain", model, 2] / (2 * med["ringtrain", model, 1])
            ok = "ok" if eff >= TARGET_EFFICIENCY[model] else "MISS"
            print(line + f"{paired:12.2f}  >= {TARGET_EFFICIENCY[model]:.2f} {ok}")
        print_phases(models, nps, phases, args.repeats)
    if args.ceiling and 1 in nps:
        print("\nmachine ceiling: two independent single-rank runs at once (no communication);"
              "\nlockstep: 2 x the slower of the two, the pace of ranks that wait for each other")
        print(f"{'model':<12}{'2 x np1':>12}{'ceiling eff':>14}{'lockstep eff':>14}" +
              (f"{'ringtrain eff':>15}" if 2 in nps else ""))
        for model in models:
            pair = statistics.median(r[4] for r in runs if r[:3] == ("independent", model, 2))
            lockstep = statistics.median(r[4] for r in runs if r[:3] == ("lockstep", model, 2))
            ceiling = pair / (2 * med["ringtrain", model, 1])
            line = (f"{model:<12}{pair:12.0f}{ceiling:14.2f}"
                    f"{lockstep / (2 * med['ringtrain', model, 1]):14.2f}")
            if 2 in nps:  # without an np-2 run there is no efficiency to set beside it
                line += f"{med['ringtrain', model, 2] / (2 * med['ringtrain', model, 1]):15.2f}"
            print(line)
    if "ddp" in impls and 2 in nps:
        print("\ntargets at np 2: ringtrain/ddp >= " +
              ", ".join(f"{TARGET_RATIO[m]} ({m})" for m in models))


if __name__ == "__main__":
    sys.exit(main())

"""Reads the train.sample_log directory of a run, for the elastic tests.

Every rank appends "epoch step index..." per sampler step to rank-R.txt; steps() gathers
them into {(epoch, step): [index, ...]} over all ranks.
"""
import collections
import glob
import os


def steps(directory, keep=lambda epoch, step: True):
    out = collections.defaultdict(list)
    files = glob.glob(os.path.join(directory, "rank-*.txt"))
    assert files, "no sample log in " + directory
    for path in files:
        for line in open(path):
            epoch, step, *indices = map(int, line.split())
            if keep(epoch, step):
                out[(epoch, step)].extend(indices)
    return out

# Optional NCCL backend (see collectives/nccl_*.cpp). Filled in by the NCCL issue.

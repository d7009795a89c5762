"""The PyTorch peer of `attend mnist`: the same networks, optimizer, batch size and data, on the CPU.

    .cache/venv/bin/python Benchmarks/fashion_mnist_torch.py --model mlp --epochs 3 --threads 2
Prints one line per epoch and a final "median epoch time" line, like `attend mnist`.
"""
import argparse
import gzip
import statistics
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def load(directory, split):
    prefix = "train" if split == "train" else "t10k"
    with gzip.open(f"{directory}/{prefix}-images-idx3-ubyte.gz") as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28).astype(np.float32) / 255
    with gzip.open(f"{directory}/{prefix}-labels-idx1-ubyte.gz") as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8).astype(np.int64)
    return torch.from_numpy(images), torch.from_numpy(labels)


def make(model):
    if model == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="mlp")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    xtr, ytr = load(a.data, "train")
    xte, yte = load(a.data, "test")
    net = make(a.model)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=0)
    steps_per_epoch = (len(xtr) + 127) // 128
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=a.epochs * steps_per_epoch)  # as attend mnist
    times = []
    for epoch in range(1, a.epochs + 1):
        net.train()
        t0 = time.perf_counter()
        perm = torch.randperm(len(xtr))
        for i in range(0, len(xtr), 128):
            idx = perm[i:i + 128]
            loss = F.cross_entropy(net(xtr[idx]), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        times.append(time.perf_counter() - t0)
        net.eval()
        with torch.no_grad():
            acc = sum((net(xte[i:i + 1000]).argmax(1) == yte[i:i + 1000]).sum().item() for i in range(0, len(xte), 1000)) / len(xte)
        print(f"epoch {epoch}: test accuracy {100 * acc:.2f}%, {times[-1]:.2f} s", flush=True)
    print(f"final test accuracy: {100 * acc:.2f}% (median epoch time {statistics.median(times):.2f} s)")


if __name__ == "__main__":
    main()

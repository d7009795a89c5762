"""The PyTorch peer of `attend bench efficientnet`: EfficientNet-Lite0 from the same torch.save file through the
PyTorch port (efficientnet_lite_pytorch), inference in eval mode under torch.inference_mode, the same threads.

    .cache/venv/bin/python Benchmarks/efficientnet_torch.py --threads 2 --batch-sizes 1 8 32 --image-sizes 224
"""
import argparse, statistics, time
import torch
from efficientnet_lite_pytorch import EfficientNet

p = argparse.ArgumentParser()
p.add_argument("--weights", default=".cache/assets/efficientnet-lite0/efficientnet-lite0-57934424.pth")
p.add_argument("--threads", type=int, default=2)
p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 32])
p.add_argument("--image-sizes", type=int, nargs="+", default=[224])
p.add_argument("--repeats", type=int, default=5)
a = p.parse_args()
torch.set_num_threads(a.threads)
print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
print(" size batch   images/s   ms/batch")
for size in a.image_sizes:
    # The port pads statically for the size it is built for, so it is built per size.
    net = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=a.weights, image_size=size).eval()
    for batch in a.batch_sizes:
        x = torch.rand(batch, 3, size, size) * 2 - 1
        with torch.inference_mode():
            net(x)
            once = time.perf_counter(); net(x); once = time.perf_counter() - once
            inner = max(1, int(0.03 / max(once, 1e-6)) + 1) if once < 0.03 else 1
            samples = []
            for _ in range(a.repeats):
                t0 = time.perf_counter()
                for _ in range(inner):
                    net(x)
                samples.append((time.perf_counter() - t0) / inner)
        s = statistics.median(samples)
        print(f"{size:5d} {batch:5d} {batch / s:10.1f} {1000 * s:10.2f}")

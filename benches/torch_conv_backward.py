"""PyTorch peer of `cargo bench --bench model -- conv_backward` and `-- batch_norm`:
forward + backward of one convolution (sum of the output as the loss), and of one
training batch norm (a weighted sum of the output as the loss), at the small-input
preset's training sizes, batch 32, fp32, 2 threads. Prints the median time per case in
ms, with the same names as the criterion groups `conv_backward_batch32` and
`batch_norm_train_batch32`.

    python3 benches/torch_conv_backward.py [--threads 2] [--iters 30]"""
import argparse
import statistics
import time

import torch

ap = argparse.ArgumentParser()
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--iters", type=int, default=30)
args = ap.parse_args()
torch.set_num_threads(args.threads)


def timed(name, step):
    for _ in range(5):
        step()
    times = []
    for _ in range(args.iters):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    print(f"{name}: {statistics.median(times) * 1e3:.3f} ms")


# (name, channels in, channels out, size, kernel, stride, groups): as in benches/model.rs.
CASES = [
    ("depthwise_k3_s1/68x16x16", 68, 68, 16, 3, 1, 68),
    ("depthwise_k5_s1/68x16x16", 68, 68, 16, 5, 1, 68),
    ("depthwise_k7_s1/68x16x16", 68, 68, 16, 7, 1, 68),
    ("depthwise_k3_s2/68x32x32", 68, 68, 32, 3, 2, 68),
    ("depthwise_k7_s2/68x32x32", 68, 68, 32, 7, 2, 68),
    ("pointwise/68to68x16x16", 68, 68, 16, 1, 1, 1),
    ("pointwise/160to160x8x8", 160, 160, 8, 1, 1, 1),
    # The fixed net's stages 2 and 3 in a 32×32 training step (first conv at stride 2).
    ("depthwise_k3_s1/160x2x2", 160, 160, 2, 3, 1, 160),
    ("depthwise_k7_s1/160x2x2", 160, 160, 2, 7, 1, 160),
    ("depthwise_k5_s1/448x1x1", 448, 448, 1, 5, 1, 448),
    ("pointwise/160to160x2x2", 160, 160, 2, 1, 1, 1),
    ("pointwise/320to448x1x1", 320, 448, 1, 1, 1, 1),
]

for name, c_in, c_out, size, kernel, stride, groups in CASES:
    x = torch.randn(32, c_in, size, size, requires_grad=True)
    w = torch.randn(c_out, c_in // groups, kernel, kernel, requires_grad=True)

    def step():
        y = torch.nn.functional.conv2d(x, w, None, stride, kernel // 2, 1, groups)
        y.sum().backward()
        x.grad = None
        w.grad = None

    timed(f"conv_backward_batch32/{name}", step)


# (channels, size): as in benches/model.rs.
for channels, size in [(16, 32), (68, 32), (68, 16), (160, 8), (320, 4)]:
    bn = torch.nn.BatchNorm2d(channels)
    x = torch.randn(32, channels, size, size, requires_grad=True)
    r = torch.randn(32, channels, size, size)

    def bn_step():
        (bn(x) * r).sum().backward()
        x.grad = None
        bn.zero_grad()

    timed(f"batch_norm_train_batch32/{channels}x{size}x{size}", bn_step)

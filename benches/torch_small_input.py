"""PyTorch peer of `latency --stem-stride 1 --size 32 --classes 10 --train-step`: the
training step of OneShot-S+ in the small-input preset (first conv at stride 1), which is
what a Fashion-MNIST/CIFAR training epoch runs. Same JSON shape as our `latency` example.

    python3 benches/torch_small_input.py --batch 32 --iters 15 [--threads 2]

Imports the peer network from ../shared/bench/torch_oneshot.py (or PYTHONPATH)."""
import argparse, os, sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "shared", "bench"))
import torch  # noqa: E402
from torch_oneshot import OneShotFixed  # noqa: E402
from torch_timing import report  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--batch", type=int, default=32)
ap.add_argument("--size", type=int, default=32)
ap.add_argument("--classes", type=int, default=10)
ap.add_argument("--iters", type=int, default=15)
ap.add_argument("--threads", type=int, default=2)
a = ap.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)
net = OneShotFixed(n_class=a.classes)
stem = net.features[0]
net.features[0] = torch.nn.Conv2d(stem.in_channels, stem.out_channels, 3, 1, 1, bias=False)
x = torch.randn(a.batch, 3, a.size, a.size)
y = torch.randint(0, a.classes, (a.batch,))
opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=4e-5)
lossf = torch.nn.CrossEntropyLoss()
net.train()


def step():
    opt.zero_grad(set_to_none=True)
    lossf(net(x), y).backward()
    opt.step()


report(step, a.iters, a.batch, threads=a.threads, size=a.size, stem_stride=1, train_step=True)

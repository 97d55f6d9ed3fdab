"""PyTorch eager peer on a GPU, same JSON shape as our `latency` example.

    python3 torch_gpu.py --batch 256 --size 224 [--train-step] [--supernet] [--amp f16|bf16]

Imports the peer implementation `torch_oneshot.py` from ../shared/bench (put it on
PYTHONPATH). Prints {"median_ms", "images_per_s", ...} on its last line."""
import argparse, os, random, sys

import torch
from torch_oneshot import OneShotFixed, OneShotSupernet

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from torch_timing import report  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--batch", type=int, default=256)
ap.add_argument("--size", type=int, default=224)
ap.add_argument("--classes", type=int, default=1000)
ap.add_argument("--iters", type=int, default=20)
ap.add_argument("--train-step", action="store_true")
ap.add_argument("--supernet", action="store_true")
ap.add_argument("--amp", choices=["f16", "bf16"], help="autocast to this dtype (BN stays float32)")
a = ap.parse_args()
dev = torch.device("cuda")
torch.manual_seed(0)
rng = random.Random(0)
net = (OneShotSupernet(a.classes) if a.supernet else OneShotFixed(n_class=a.classes)).to(dev)
x = torch.randn(a.batch, 3, a.size, a.size, device=dev)
y = torch.randint(0, a.classes, (a.batch,), device=dev)
opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=4e-5)
lossf = torch.nn.CrossEntropyLoss()


def run():
    if a.supernet:
        blocks, ids = OneShotSupernet.random_choice(rng)
        return net(x, blocks, [max(i, 2) for i in ids])
    return net(x)


amp = {"f16": torch.float16, "bf16": torch.bfloat16}.get(a.amp)
scaler = torch.amp.GradScaler("cuda", enabled=a.amp == "f16" and a.train_step)


def autocast():
    return torch.autocast("cuda", dtype=amp or torch.float16, enabled=amp is not None)


def step():
    if a.train_step:
        net.train()
        opt.zero_grad(set_to_none=True)
        with autocast():
            loss = lossf(run(), y)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
    else:
        net.eval()
        with torch.no_grad(), autocast():
            run()
    torch.cuda.synchronize()


report(step, a.iters, a.batch, device=torch.cuda.get_device_name(0), size=a.size, train_step=a.train_step,
       supernet=a.supernet, amp=a.amp)

"""PyTorch eager peer of our `latency` example, on the CPU or a GPU, same JSON shape.

    python3 benches/torch_peer.py --device cpu --batch 32 --size 32 --classes 10 --train-step --supernet
    python3 benches/torch_peer.py --device cuda --batch 256 --size 224 [--train-step] [--supernet] [--amp f16|bf16]

`--supernet` runs `torch_oneshot.OneShotSupernet` with a random path per step drawn as
ours is: uniform block choices and uniform channel ids over the searchable 2..=9
(scales 0.6-2.0). Imports the peer implementation `torch_oneshot.py` from
../shared/bench (or PYTHONPATH). Prints {"median_ms", "images_per_s", ...} on its last line."""
import argparse, os, random, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "bench"))
import torch  # noqa: E402
from torch_oneshot import OneShotFixed, OneShotSupernet  # noqa: E402
from torch_timing import report  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--device", choices=["cpu", "cuda"], default="cuda")
ap.add_argument("--threads", type=int, default=2, help="CPU threads (with --device cpu)")
ap.add_argument("--batch", type=int, default=256)
ap.add_argument("--size", type=int, default=224)
ap.add_argument("--classes", type=int, default=1000)
ap.add_argument("--iters", type=int, default=20)
ap.add_argument("--train-step", action="store_true")
ap.add_argument("--supernet", action="store_true")
ap.add_argument("--amp", choices=["f16", "bf16"], help="autocast to this dtype (BN stays float32)")
a = ap.parse_args()
dev = torch.device(a.device)
cuda = a.device == "cuda"
if not cuda:
    torch.set_num_threads(a.threads)
torch.manual_seed(0)
rng = random.Random(0)
net = (OneShotSupernet(a.classes) if a.supernet else OneShotFixed(n_class=a.classes)).to(dev)
x = torch.randn(a.batch, 3, a.size, a.size, device=dev)
y = torch.randint(0, a.classes, (a.batch,), device=dev)
opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=4e-5)
lossf = torch.nn.CrossEntropyLoss()


def run():
    if a.supernet:
        blocks = [rng.randint(0, 3) for _ in range(20)]
        return net(x, blocks, [rng.randint(2, 9) for _ in range(20)])
    return net(x)


amp = {"f16": torch.float16, "bf16": torch.bfloat16}.get(a.amp)
scaler = torch.amp.GradScaler(a.device, enabled=a.amp == "f16" and a.train_step)


def autocast():
    return torch.autocast(a.device, dtype=amp or torch.float16, enabled=amp is not None)


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
    if cuda:
        torch.cuda.synchronize()


report(step, a.iters, a.batch, device=torch.cuda.get_device_name(0) if cuda else "cpu", threads=torch.get_num_threads(),
       size=a.size, train_step=a.train_step,
       supernet=a.supernet, amp=a.amp)

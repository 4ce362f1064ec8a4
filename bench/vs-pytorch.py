"""PyTorch arm of bench/vs-pytorch.ts: the same two models (bench/models.ts), batch 64, Adam 1e-3,
cross-entropy, random data. Spawned by the TS bench with Debian's /usr/bin/python3 and
OPENBLAS_NUM_THREADS=1; runs torch.set_num_threads(THREADS) (default 2).

Protocol (one line each way): the parent writes "<mlp|cnn> <steps>", we train that many steps
(one pass over steps*64 fixed samples, reading the loss every step as fitloop does) and answer
{"model":..., "samples_per_s":..., "loss":...}. "quit" ends. The first line we print is
{"ready":true, "torch":version, "threads":n} or {"ready":false, "error":...}.
"""
import json
import os
import sys
import time

try:
    import torch
    from torch import nn
except Exception as e:  # torch absent or broken
    print(json.dumps({"ready": False, "error": f"{type(e).__name__}: {e}"}), flush=True)
    sys.exit(0)

BATCH = 64
CLASSES = 10
torch.set_num_threads(int(os.environ.get("THREADS", "2")))
torch.manual_seed(0)


def build(kind):
    if kind == "mlp":
        return nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, CLASSES))
    # relu before BN, as in the tfjs model (conv with activation, then batchNormalization)
    return nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.BatchNorm2d(32, momentum=0.1), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.BatchNorm2d(64, momentum=0.1), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(1600, 128), nn.ReLU(), nn.Linear(128, CLASSES),
    )


SHAPES = {"mlp": (784,), "cnn": (1, 28, 28)}
rigs = {}


def rig(kind, steps):
    r = rigs.get(kind)
    if r is None or r["xs"].shape[0] < steps * BATCH:
        model = build(kind)
        model.train()
        xs = torch.rand((steps * BATCH, *SHAPES[kind]))
        ys = torch.randint(0, CLASSES, (steps * BATCH,))
        r = {"model": model, "opt": torch.optim.Adam(model.parameters(), lr=1e-3), "xs": xs, "ys": ys}
        rigs[kind] = r
    return r


def run(kind, steps):
    r = rig(kind, steps)
    model, opt, xs, ys = r["model"], r["opt"], r["xs"], r["ys"]
    loss_fn = nn.CrossEntropyLoss()
    t0 = time.perf_counter()
    last = float("nan")
    for i in range(steps):
        x = xs[i * BATCH:(i + 1) * BATCH]
        y = ys[i * BATCH:(i + 1) * BATCH]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        last = loss.item()
    dt = time.perf_counter() - t0
    return {"model": kind, "samples_per_s": steps * BATCH / dt, "loss": last}


print(json.dumps({"ready": True, "torch": torch.__version__, "threads": torch.get_num_threads()}), flush=True)
for line in sys.stdin:
    parts = line.split()
    if not parts or parts[0] == "quit":
        break
    print(json.dumps(run(parts[0], int(parts[1]))), flush=True)

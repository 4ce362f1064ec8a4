#!/usr/bin/env python3
"""Reference values from PyTorch's torch.optim.swa_utils (AveragedModel, update_bn, SWALR).

Run with Debian's python3-torch:

    OPENBLAS_NUM_THREADS=1 /usr/bin/python3 packages/callbacks/weight-averaging/scripts/torch-reference.py

Writes packages/callbacks/weight-averaging/src/torch-reference.fixture.json (checked by
src/torch-reference.test.ts; CI has no torch). Every input is made here from closed-form
expressions and stored in the fixture, so the test feeds the same float32 values to fitloop.
"""
import json
import math
import os
import warnings

import torch
from torch.optim.swa_utils import SWALR, AveragedModel, update_bn

warnings.filterwarnings("ignore", category=UserWarning)
torch.set_num_threads(1)

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "src", "torch-reference.fixture.json")


def f32(t):
    return [float(v) for v in t.detach().reshape(-1).tolist()]


def snapshots(k, shapes):
    """k sets of weights, float32, deterministic: sin/cos patterns with a drift."""
    out = []
    for s in range(k):
        ws = []
        for i, shape in enumerate(shapes):
            n = math.prod(shape)
            idx = torch.arange(n, dtype=torch.float64)
            w = torch.sin(idx * 0.37 + s * 1.3 + i) * (1 + 0.1 * s) + 0.05 * s * torch.cos(idx * 1.7)
            ws.append(w.to(torch.float32).reshape(shape))
        out.append(ws)
    return out


def averaged(avg_fn, snaps, shapes):
    net = torch.nn.Module()
    params = torch.nn.ParameterList([torch.nn.Parameter(torch.zeros(s)) for s in shapes])
    net.params = params
    swa = AveragedModel(net, avg_fn=avg_fn)
    after = []
    for ws in snaps:
        with torch.no_grad():
            for p, w in zip(params, ws):
                p.copy_(w)
        swa.update_parameters(net)
        after.append([f32(p) for p in swa.module.params])
    return after


SHAPES = [[3, 4], [4]]
SNAPS = snapshots(7, SHAPES)
DECAY = 0.9
averaging = {
    "shapes": SHAPES,
    "weights": [[f32(w) for w in ws] for ws in SNAPS],
    "swa": averaged(None, SNAPS, SHAPES),
    "emaDecay": DECAY,
    # torch 1.13's documented EMA avg_fn; its first update copies (n_averaged == 0)
    "ema": averaged(lambda a, p, n: DECAY * a + (1 - DECAY) * p, SNAPS, SHAPES),
}

# update_bn: Linear(4, 8) + ReLU + BatchNorm1d(8) + Linear(8, 3), fixed weights, 5 batches of 16
torch.manual_seed(0)
net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.BatchNorm1d(8, momentum=0.1), torch.nn.Linear(8, 3))
with torch.no_grad():
    for p in net.parameters():
        n = p.numel()
        p.copy_((torch.sin(torch.arange(n, dtype=torch.float64) * 0.91 + n) * 0.8).to(torch.float32).reshape(p.shape))
    net[2].running_mean.fill_(5.0)  # stale statistics update_bn must replace
    net[2].running_var.fill_(7.0)
idx = torch.arange(5 * 16 * 4, dtype=torch.float64)
xs = (torch.sin(idx * 0.13) * 2 + torch.cos(idx * 0.029) * 1.5).to(torch.float32).reshape(5, 16, 4)
update_bn([xs[b] for b in range(5)], net)
batch_norm = {
    "linear1": {"weight": f32(net[0].weight), "bias": f32(net[0].bias), "out": 8, "in": 4},
    "bn": {"gamma": f32(net[2].weight), "beta": f32(net[2].bias), "eps": net[2].eps},
    "linear2": {"weight": f32(net[3].weight), "bias": f32(net[3].bias), "out": 3, "in": 8},
    "batches": [f32(xs[b]) for b in range(5)],
    "batchSize": 16,
    "runningMean": f32(net[2].running_mean),
    # PyTorch averages the unbiased batch variances
    "runningVar": f32(net[2].running_var),
    "momentumAfter": net[2].momentum,
}

# SWALR: lr before each of the first N scheduler steps, from a starting lr
swalr = []
for start, swa_lr, anneal, strategy in [(0.1, 0.01, 10, "cos"), (0.1, 0.05, 4, "linear"), (0.5, 0.02, 0, "cos"), (0.02, 0.2, 3, "cos"), (1e-3, 1e-4, 1, "linear")]:
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=start)
    sched = SWALR(opt, swa_lr=swa_lr, anneal_epochs=anneal, anneal_strategy=strategy)
    lrs = []
    for _ in range(14):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    swalr.append({"startLr": start, "swaLr": swa_lr, "annealEpochs": anneal, "strategy": strategy, "lr": lrs})

doc = {
    "source": f"torch {torch.__version__}, torch.optim.swa_utils (AveragedModel, update_bn, SWALR); scripts/torch-reference.py",
    "averaging": averaging,
    "batchNorm": batch_norm,
    "swalr": swalr,
}
with open(OUT, "w") as f:
    json.dump(doc, f, indent=1)
    f.write("\n")
print(json.dumps(doc)[:400], "...")

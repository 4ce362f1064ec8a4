"""PyTorch side of bench/time-to-accuracy.ts: the demo's CNN and the `classification` preset's recipe
(AdamW, OneCycleLR with beta1 cycling, clip_grad_norm_, a NaN guard, Keras-rule early stopping restoring
the best weights) on the exact train/held-out split the TS side wrote, timed until the held-out accuracy
first reaches the target. Spawned by the TS bench with Debian's /usr/bin/python3 and
OPENBLAS_NUM_THREADS=1; runs torch.set_num_threads(THREADS) (default 2).

Parity with fitloop (the TS side sends every number; nothing here is a default of its own):
  model      conv3x3x32 relu -> BN -> maxpool2 -> conv3x3x64 relu -> BN -> maxpool2 -> dense 128 relu ->
             dropout -> dense 10 (the softmax is inside CrossEntropyLoss); relu before BN as the tfjs model
  init       Keras' defaults, not PyTorch's: glorot (xavier) uniform kernels, zero biases, BN gamma 1 beta 0
  BN         Keras momentum 0.9 = PyTorch momentum 0.1; Keras epsilon 1e-3 (PyTorch's default is 1e-5)
  data       the same float32 images and labels (raw files from the TS side), the same random integer shift
             in [-maxShift, maxShift] per axis per image with zero fill, then (x - mean) * (1 / std) with the
             training split's statistics; shuffled every epoch; held-out evaluated in batches of 500
  optimizer  AdamW: decay = weight_decay on conv and dense kernels only (fitloop's WeightDecay default:
             biases and BN gamma/beta do not decay), w <- w * (1 - lr * wd) before the Adam update
  schedule   OneCycleLR per step with fitloop's parameters; beta1 cycles max_momentum -> base_momentum -> max
  clip       clip_grad_norm_(max_norm) on all gradients (fitloop: scale by max/max(norm, max); PyTorch divides
             by norm + 1e-6: a 1e-6/norm relative difference)
  NaN guard  a non-finite loss stops the run before that update (fitloop's TerminateOnNaN)
  early stop Keras' rule as @fitloop/early-stopping: each epoch wait += 1; val_loss < best - min_delta is an
             improvement (best, its weights incl. BN running stats copied, wait = 0); a non-finite val_loss
             stops; no improvement with wait >= patience stops (never at epoch 0); at the end the best
             epoch's weights are restored, whatever ended the run

Protocol (one JSON line each way): the first line we print is {"ready":true,"torch":...,"threads":n} or
{"ready":false,"error":...}. The parent writes a run's config as one JSON line; we print one line per
epoch {"epoch":e,"val_acc":..,"val_loss":..,"t":seconds since the start of training} and then
{"done":true,...}. "quit" (or EOF) ends.
"""
import copy
import json
import math
import os
import sys
import time

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
    from torch import nn
except Exception as e:  # torch (or numpy) absent or broken
    print(json.dumps({"ready": False, "error": f"{type(e).__name__}: {e}"}), flush=True)
    sys.exit(0)

torch.set_num_threads(int(os.environ.get("THREADS", "2")))


def build(c):
    m = nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.BatchNorm2d(32, eps=c["bn_epsilon"], momentum=1 - c["bn_momentum_keras"]), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.BatchNorm2d(64, eps=c["bn_epsilon"], momentum=1 - c["bn_momentum_keras"]), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(1600, 128), nn.ReLU(), nn.Dropout(c["dropout"]), nn.Linear(128, 10),
    )
    for mod in m.modules():
        if isinstance(mod, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(mod.weight)  # Keras glorot_uniform: same fan_in/fan_out for convolutions
            nn.init.zeros_(mod.bias)
    return m


def load(d, name, n):
    x = torch.from_numpy(np.fromfile(os.path.join(d, f"{name}_x.f32"), dtype="<f4").reshape(n, 1, 28, 28).copy())
    y = torch.from_numpy(np.fromfile(os.path.join(d, f"{name}_y.i32"), dtype="<i4").astype(np.int64))
    return x, y


def evaluate(model, x, y, mean, inv_std, batch=500):
    model.eval()
    loss_sum = 0.0
    correct = 0
    with torch.no_grad():
        for i in range(0, x.shape[0], batch):
            logits = model((x[i:i + batch] - mean) * inv_std)
            t = y[i:i + batch]
            loss_sum += F.cross_entropy(logits, t, reduction="sum").item()
            correct += int((logits.argmax(1) == t).sum())
    model.train()
    return loss_sum / x.shape[0], correct / x.shape[0]


def run(c):
    torch.manual_seed(c["seed"])
    gen = torch.Generator().manual_seed(c["seed"])
    train_x, train_y = load(c["dir"], "train", c["train_size"])
    val_x, val_y = load(c["dir"], "val", c["val_size"])
    mean = torch.tensor(c["mean"], dtype=torch.float32)
    inv_std = torch.tensor(c["inv_std"], dtype=torch.float32)
    s = c["max_shift"]
    padded = F.pad(train_x, (s, s, s, s)) if s > 0 else train_x  # zero fill in raw pixel space, as randomShift
    ar = torch.arange(28)

    def batch_x(idx):
        if s == 0:
            return train_x[idx]
        # crop at offset o in [0, 2s] of the padded image = a shift by s - o in [-s, s], per image and axis
        oy = torch.randint(0, 2 * s + 1, (idx.shape[0],), generator=gen)
        ox = torch.randint(0, 2 * s + 1, (idx.shape[0],), generator=gen)
        rows = (oy[:, None] + ar[None, :])[:, :, None]
        cols = (ox[:, None] + ar[None, :])[:, None, :]
        return padded[idx[:, None, None], 0, rows, cols].unsqueeze(1)

    model = build(c)
    model.train()
    decay = [m.weight for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    decay_ids = {id(p) for p in decay}
    rest = [p for p in model.parameters() if id(p) not in decay_ids]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": c["weight_decay"]}, {"params": rest, "weight_decay": 0.0}],
        lr=c["max_lr"], betas=(c["beta1"], c["beta2"]), eps=c["epsilon"],
    )
    epochs, spe, bs = c["epochs"], c["steps_per_epoch"], c["batch"]
    total = epochs * spe
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=c["max_lr"], total_steps=total, pct_start=c["pct_start"], anneal_strategy=c["anneal"],
        cycle_momentum=True, base_momentum=c["base_momentum"], max_momentum=c["max_momentum"],
        div_factor=c["div_factor"], final_div_factor=c["final_div_factor"], three_phase=False,
    )
    probes = set(c["probe_steps"])
    probe = []
    loss_fn = nn.CrossEntropyLoss()
    es = c["early_stopping"]  # None: off
    best, best_epoch, wait, best_state = math.inf, None, 0, None
    target, reached_t, reached_epoch = c["target"], None, None
    n = c["train_size"]
    step = 0
    stop = None
    epochs_run = 0
    last_acc = None

    t0 = time.perf_counter()
    for epoch in range(epochs):
        perm = torch.randperm(n, generator=gen)
        for b in range(spe):
            idx = perm[b * bs:(b + 1) * bs]
            x = (batch_x(idx) - mean) * inv_std
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), train_y[idx])
            loss.backward()
            if not math.isfinite(loss.item()):  # the NaN guard reads the loss every step, as fitloop does
                stop = f"non-finite loss at step {step}"
                break
            nn.utils.clip_grad_norm_(model.parameters(), c["clip"])
            if step in probes:
                g = opt.param_groups[0]
                probe.append([step, g["lr"], g["betas"][0]])
            opt.step()
            sched.step()
            step += 1
        if stop:
            break
        val_loss, val_acc = evaluate(model, val_x, val_y, mean, inv_std)
        epochs_run = epoch + 1
        last_acc = val_acc
        if es is not None:
            wait += 1
            improved = math.isfinite(val_loss) and val_loss < best - es["min_delta"]
            if improved:
                best, best_epoch, wait = val_loss, epoch, 0
                if es["restore"]:
                    best_state = copy.deepcopy(model.state_dict())
            if not math.isfinite(val_loss):
                stop = f"val_loss is {val_loss} at epoch {epoch}"
            elif not improved and wait >= es["patience"] and epoch > 0:
                stop = f"early stopping: val_loss did not improve for {wait} epochs (best {best:.4f} at epoch {best_epoch + 1})"
        # read after early stopping's weight copy, as fitloop's clock runs after its EarlyStopping
        t = time.perf_counter() - t0
        if reached_t is None and val_acc >= target:
            reached_t, reached_epoch = t, epoch + 1
        print(json.dumps({"epoch": epoch, "val_acc": val_acc, "val_loss": val_loss, "t": t}), flush=True)
        if stop:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    train_s = time.perf_counter() - t0
    _, final_acc = evaluate(model, val_x, val_y, mean, inv_std)
    return {
        "done": True, "reached_s": reached_t, "reached_epoch": reached_epoch, "final_acc": final_acc,
        "last_epoch_acc": last_acc, "epochs_run": epochs_run, "steps": step, "train_s": train_s,
        "best_epoch": best_epoch, "stop": stop, "probe": probe,
    }


print(json.dumps({"ready": True, "torch": torch.__version__, "threads": torch.get_num_threads()}), flush=True)
for line in sys.stdin:
    line = line.strip()
    if not line or line == "quit":
        break
    try:
        print(json.dumps(run(json.loads(line))), flush=True)
    except Exception as e:
        print(json.dumps({"done": True, "error": f"{type(e).__name__}: {e}"}), flush=True)

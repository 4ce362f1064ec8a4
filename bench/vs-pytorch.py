"""PyTorch arm of bench/vs-pytorch.ts: the same two models (bench/models.ts), batch 64, Adam 1e-3,
cross-entropy, random data. Spawned by the TS bench with Debian's /usr/bin/python3, once per thread
setting: torch.set_num_threads(THREADS) (default 2) with OPENBLAS_NUM_THREADS from the environment
(the TS bench runs THREADS=2 + OPENBLAS_NUM_THREADS=1 and THREADS=1 + OPENBLAS_NUM_THREADS=2).

Protocol (one line each way): the parent writes "<mlp|cnn> <steps>", we train that many steps
(one pass over steps*64 fixed samples, reading the loss every step as fitloop does) and answer
{"model":..., "samples_per_s":..., "loss":...}. "mem reset" resets this process's peak resident set
(writes 5 to /proc/self/clear_refs, Linux) and answers {"reset":bool, "rss_kib":n}; "mem" answers
{"hwm_kib":n (VmHWM: peak RSS since the last reset), "rss_kib":n, "maxrss_kib":n (getrusage
ru_maxrss: peak over the process's life)}. "quit" ends. The first line we print is
{"ready":true, "torch":version, "threads":n, "blas_threads":n|null} or {"ready":false, "error":...}.
"""
import ctypes
import json
import os
import resource
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


def status_kib(field):
    """A "VmXXX:  n kB" line of /proc/self/status, in KiB (None where there is no /proc)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def mem(reset):
    if reset:
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            ok = True
        except OSError:
            ok = False
        return {"reset": ok, "rss_kib": status_kib("VmRSS")}
    return {"hwm_kib": status_kib("VmHWM"), "rss_kib": status_kib("VmRSS"), "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}


def blas_threads():
    """OpenBLAS's own thread count, from the libopenblas torch loaded (None when not found)."""
    try:
        with open("/proc/self/maps") as f:
            libs = {line.split()[-1] for line in f if "libopenblas" in line}
        for lib in sorted(libs):
            fn = getattr(ctypes.CDLL(lib), "openblas_get_num_threads", None)
            if fn is not None:
                return int(fn())
    except OSError:
        pass
    return None


torch.mm(torch.ones(8, 8), torch.ones(8, 8))  # loads the BLAS
print(json.dumps({"ready": True, "torch": torch.__version__, "threads": torch.get_num_threads(), "blas_threads": blas_threads()}), flush=True)
for line in sys.stdin:
    parts = line.split()
    if not parts or parts[0] == "quit":
        break
    if parts[0] == "mem":
        print(json.dumps(mem(len(parts) > 1 and parts[1] == "reset")), flush=True)
        continue
    print(json.dumps(run(parts[0], int(parts[1]))), flush=True)

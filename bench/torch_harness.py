"""The timing harness the PyTorch twins in bench/ share: the same flags, Adam and cross-entropy
on random data (speed only), training then inference rounds, one JSON line
{"model", "batch", "threads", "train_img_s", "infer_img_s"}."""
import argparse, json, time
import torch
import torch.nn as nn


def rate(step, batch, seconds):
    """Images per second of `step` over `seconds`, after one warm-up call."""
    step()  # warm-up
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        step()
        n += 1
    return n * batch / (time.perf_counter() - t0)


def parse(name):
    """The flags every twin takes (--model, --batch, --seconds, --threads); seeds torch and sets its threads."""
    p = argparse.ArgumentParser()
    p.add_argument('--model', choices=(name,), default=name)
    p.add_argument('--batch', type=int, default=25)
    p.add_argument('--seconds', type=float, default=20)
    p.add_argument('--threads', type=int, default=torch.get_num_threads())
    a = p.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(a.threads)
    return a


def report(name, a, train_step, infer_step, train_mode, eval_mode):
    """Times `train_step` for a.seconds and `infer_step` (no_grad) for half that; prints the JSON line."""
    train_mode()
    out = {'model': name, 'batch': a.batch, 'threads': a.threads}
    try:
        out['train_img_s'] = round(rate(train_step, a.batch, a.seconds), 1)
    except RuntimeError as e:
        # Under bf16 autocast (torch_autocast.py) some PyTorch versions lack a bf16 gradient
        # (1.13: ReLU6's backward): no training figure, and the reason in the line.
        out['train_img_s'] = 0
        out['train_error'] = str(e).split('\n')[0]
    eval_mode()
    with torch.no_grad():
        out['infer_img_s'] = round(rate(infer_step, a.batch, a.seconds / 2), 1)
    print(json.dumps(out))


def run(name, build, input_shape, classes=20):
    """Parses the flags, times `build()` on inputs of `input_shape` (C, H, W), prints the JSON line."""
    a = parse(name)
    net = build()
    opt = torch.optim.Adam(net.parameters())
    loss = nn.CrossEntropyLoss()
    x = torch.randn(a.batch, *input_shape)
    y = torch.randint(0, classes, (a.batch,))

    def train_step():
        opt.zero_grad()
        loss(net(x), y).backward()
        opt.step()

    report(name, a, train_step, lambda: net(x), net.train, net.eval)

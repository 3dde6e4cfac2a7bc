"""The shared training loop trains a real model and keeps its history."""

from __future__ import annotations

import torch

from trainers.loop import seed_everything, train


def test_loop_fits_a_line_and_reports(capsys):
    seed_everything(0)
    x = torch.linspace(-1, 1, 64)[:, None]
    y = 3 * x - 1
    net = torch.nn.Linear(1, 1)
    opt = torch.optim.Adam(net.parameters(), lr=0.1)

    def step(batch):
        xb, yb = batch
        opt.zero_grad()
        loss = torch.mean((net(xb) - yb) ** 2)
        loss.backward()
        opt.step()
        return {"loss": loss.item()}

    def batches(epoch):
        for i in range(0, 64, 16):
            yield x[i:i + 16], y[i:i + 16]

    hist = train(step, batches, 60, desc="line", steps_per_epoch=4,
                 evaluate=lambda e: {"val": float(torch.mean((net(x) - y) ** 2).detach())}, eval_every=10,
                 show_progress=False)
    assert len(hist.epochs) == 60 and hist.series("loss")[-1] < hist.series("loss")[0]
    assert hist.last("val") < 1e-2 and len(hist.series("val")) == 6
    assert "line: 60 epoch(s)" in capsys.readouterr().out


def test_time_budget_stops_early():
    calls = []
    hist = train(lambda b: calls.append(b) or {}, lambda e: [e], 1000, desc="t", time_limit_s=0.0,
                 show_progress=False)
    assert hist.stopped_early and len(hist.epochs) == 1

"""AdamW reference: torch.optim.AdamW (foreach=False) with torch.nn.utils.clip_grad_norm_.

params: {"cases": [{"name", "sizes", "lrs", "beta1", "beta2", "eps", "weight_decay", "max_grad_norm"}]}
inputs: <name>.params0 (f32 [n], the parameter tensors of `sizes` laid end to end) and
<name>.grads (f32 [steps, n], the gradient of each step, before clipping).
outputs per case: params (f32 [steps, n], after each step), m and v (f32 [steps, n], the
moments after each step), norms (f32 [steps], the gradient norm clip_grad_norm_ saw).
"""

import torch

from oracle_io import read_inputs, write_outputs

params, inputs = read_inputs()
out = {}
for case in params["cases"]:
    name, sizes, lrs = case["name"], case["sizes"], case["lrs"]
    tensors = [torch.nn.Parameter(p.clone()) for p in inputs[name + ".params0"].split(sizes)]
    opt = torch.optim.AdamW(
        tensors,
        lr=lrs[0],
        betas=(case["beta1"], case["beta2"]),
        eps=case["eps"],
        weight_decay=case["weight_decay"],
        foreach=False,
    )
    trajectory, ms, vs, norms = [], [], [], []
    for step, grad in enumerate(inputs[name + ".grads"]):
        for p, g in zip(tensors, grad.split(sizes)):
            p.grad = g.clone()
        if case["max_grad_norm"] > 0:
            norms.append(torch.nn.utils.clip_grad_norm_(tensors, case["max_grad_norm"]))
        else:
            norms.append(torch.linalg.vector_norm(grad))
        opt.param_groups[0]["lr"] = lrs[step]
        opt.step()
        trajectory.append(torch.cat([p.detach().reshape(-1) for p in tensors]))
        ms.append(torch.cat([opt.state[p]["exp_avg"].reshape(-1) for p in tensors]))
        vs.append(torch.cat([opt.state[p]["exp_avg_sq"].reshape(-1) for p in tensors]))
    out[name + ".params"] = torch.stack(trajectory)
    out[name + ".m"] = torch.stack(ms)
    out[name + ".v"] = torch.stack(vs)
    out[name + ".norms"] = torch.stack([n.float() for n in norms])

write_outputs(out)

"""What the ProxIQA network learns from at each step (eq. 11), and how well its gradient points.

Eq. (11) regresses the true metric on the codec's newest reconstructions only. A proxy fitted
that way learns the *level* of the score near the codec's outputs, not how the score changes
when x̂ moves, and the codec only ever uses the latter (∂M̂/∂x̂). Two tools here:

* :func:`proxy_batch` adds pairs to the proxy's batch, each labelled by the true metric like
  the reconstructions themselves:

  - **probes**, one perturbed copy of each reconstruction, ``x̂ + ε d / rms(d)`` with an RMS
    change ε drawn from :data:`PROBE_RMS`, along a direction ``d`` of one of
    :data:`PROBE_KINDS` (cycled over the patches): ``grad``, the proxy's own gradient
    ∂M̂/∂x̂, i.e. the way the codec is about to be pushed (where the proxy is wrong about the
    slope, the true score of that copy tells it so); ``sharpen`` (x̂ minus its blur),
    ``blur``, ``noise``, ``source`` (towards x: the MSE direction x − x̂) and ``contrast``
    (x̂ minus its mean: more contrast). On the lab MSE models' reconstructions the exact VMAF
    gradient has a cosine of 0.14–0.21 with each of ``source``, ``sharpen`` and ``contrast``,
    and of about 0.4 with the best mix of them, so these are the directions whose slopes a
    proxy most needs;
  - the **pristine pair** ``(x, x)`` of the released code (``bls2017_vmafp_th_re.py``
    replaces one patch by its source, labelled 97, in about half of the steps), which shows
    the proxy the top of the scale. Here it is added, not swapped in, with its true score
    (97.43 for VMAF v0.6.1), so that the logged metric stays that of the reconstructions.

* :func:`gradient_diagnostics` measures, on the same reconstructions, the cosine between the
  proxy's gradient and the exact gradient of the metric (``metrics.differentiable``), beside
  the cosine of the plain MSE gradient: a proxy can track the score and still point the codec
  the wrong way.

All randomness comes from torch's global generator, which the trainer seeds and checkpoints,
so runs that use these resume exactly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

#: Directions of the proxy's probe pairs.
PROBE_KINDS = ("grad", "sharpen", "blur", "noise", "source", "contrast")
#: Range of a probe's RMS change, on the [0, 1] scale (1 to 6 grey levels).
PROBE_RMS = (1 / 255, 6 / 255)


def check_probes(kinds) -> tuple[str, ...]:
    """``kinds`` as a tuple of :data:`PROBE_KINDS`, or ``ValueError``."""
    if isinstance(kinds, str) or not all(isinstance(k, str) for k in kinds):
        raise ValueError(f"proxy_probes must be a list of names from {PROBE_KINDS}, got {kinds!r}")
    unknown = [k for k in kinds if k not in PROBE_KINDS]
    if unknown:
        raise ValueError(f"unknown proxy probe(s) {unknown}; allowed: {PROBE_KINDS}")
    return tuple(kinds)


def _blur(x: Tensor, sigma: float = 1.0) -> Tensor:
    radius = 3
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = (k / k.sum()).reshape(1, 1, 1, -1).repeat(x.shape[1], 1, 1, 1)
    y = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="reflect"), k, groups=x.shape[1])
    return F.conv2d(F.pad(y, (0, 0, radius, radius), mode="reflect"), k.transpose(-1, -2), groups=x.shape[1])


def input_gradient(proxy: torch.nn.Module, x: Tensor, x_hat: Tensor) -> Tensor:
    """∂M̂/∂x̂ of each pair (the proxy's weights get no gradient)."""
    with torch.enable_grad():
        x_hat = x_hat.detach().clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(proxy(x.detach(), x_hat).sum(), x_hat)
    return grad


def probes(x: Tensor, x_hat: Tensor, kinds, proxy: torch.nn.Module | None = None) -> Tensor:
    """One perturbed copy of each reconstruction (see the module docstring), clamped to [0, 1]."""
    kinds = check_probes(kinds)
    n = x_hat.shape[0]
    which = [kinds[i % len(kinds)] for i in range(n)]
    directions = torch.empty_like(x_hat)
    if "grad" in which:
        if proxy is None:
            raise ValueError("the 'grad' probe needs the ProxIQA network")
        directions.copy_(input_gradient(proxy, x, x_hat))
    blurred = _blur(x_hat) if {"sharpen", "blur"} & set(which) else None
    noise = torch.randn_like(x_hat) if "noise" in which else None
    for i, kind in enumerate(which):
        if kind == "sharpen":
            directions[i] = x_hat[i] - blurred[i]
        elif kind == "blur":
            directions[i] = blurred[i] - x_hat[i]
        elif kind == "noise":
            directions[i] = noise[i]
        elif kind == "source":
            directions[i] = x[i] - x_hat[i]
        elif kind == "contrast":
            directions[i] = x_hat[i] - x_hat[i].mean(dim=(1, 2), keepdim=True)
    lo, hi = PROBE_RMS
    eps = lo + (hi - lo) * torch.rand(n, 1, 1, 1, dtype=x_hat.dtype, device=x_hat.device)
    rms = directions.pow(2).mean(dim=(1, 2, 3), keepdim=True).sqrt().clamp_min(1e-12)
    return (x_hat + eps * directions / rms).clamp(0, 1).detach()


def proxy_batch(
    x: Tensor, x_hat: Tensor, kinds=(), pristine: float = 0.0, proxy: torch.nn.Module | None = None
) -> tuple[Tensor, Tensor]:
    """The pairs the proxy step of eq. (11) is trained on: the reconstructions first, then probes
    and, with probability ``pristine``, one pristine pair ``(x[0], x[0])``.

    Args:
        x: sources (N, 3, P, P) in [0, 1].
        x_hat: the codec's reconstructions, clamped to [0, 1], detached.
        kinds: probe directions (:data:`PROBE_KINDS`); empty for none.
        pristine: probability of adding the pristine pair.
        proxy: the ProxIQA network (for ``grad`` probes).

    Returns:
        ``(x_batch, x_hat_batch)``, the first N pairs being ``(x, x_hat)``.
    """
    xs, hats = [x], [x_hat]
    if kinds:
        xs.append(x)
        hats.append(probes(x, x_hat, kinds, proxy))
    if pristine > 0 and float(torch.rand(())) < pristine:
        xs.append(x[:1])
        hats.append(x[:1])
    if len(xs) == 1:
        return x, x_hat
    return torch.cat(xs), torch.cat(hats)


def gradient_diagnostics(x: Tensor, x_hat: Tensor, proxy: torch.nn.Module | None, exact) -> dict[str, float]:
    """How the proxy's gradient, and the plain MSE gradient, point against the metric's exact gradient.

    Args:
        x: sources (N, 3, P, P).
        x_hat: reconstructions, clamped to [0, 1].
        proxy: the ProxIQA network the codec is trained through (``None``: MSE only).
        exact: the metric's differentiable counterpart, ``exact(x, x_hat) -> (N,)``.

    Returns:
        Batch means of ``grad_cos_proxy`` (cosine of ∂M̂/∂x̂ with ∂M/∂x̂), ``grad_cos_mse``
        (of the MSE descent direction x - x̂ with ∂M/∂x̂) and ``grad_scale_proxy``
        (‖∂M̂/∂x̂‖ / ‖∂M/∂x̂‖: below 1 the proxy pushes less hard than the metric would).
    """
    with torch.enable_grad():
        probe = x_hat.detach().clone().requires_grad_(True)
        (g_exact,) = torch.autograd.grad(exact(x.detach(), probe).sum(), probe)
    g_exact = g_exact.flatten(1)
    out = {"grad_cos_mse": float(F.cosine_similarity((x - x_hat).flatten(1), g_exact, dim=1).mean())}
    if proxy is not None:
        g_proxy = input_gradient(proxy, x, x_hat).flatten(1)
        out["grad_cos_proxy"] = float(F.cosine_similarity(g_proxy, g_exact, dim=1).mean())
        out["grad_scale_proxy"] = float((g_proxy.norm(dim=1) / g_exact.norm(dim=1).clamp_min(1e-12)).mean())
    return out

r"""Training objectives by name: what the codec minimises, and whether a proxy is trained.

=========================  =====================================================================
``mse``                    :math:`\lambda \cdot 255^2\,\mathrm{MSE} + R`, eq. (8)
``ssim``                   :math:`\lambda s (1 - \mathrm{SSIM}) + R`, eq. (14) plus rate
``ssim+ld``                :math:`\lambda[\alpha s \mathcal{L}_{SSIM} + (1-\alpha) 255^2 \mathrm{MSE}] + R`, eq. (13)
``ms-ssim``                :math:`\lambda s (1 - \mathrm{MS\text{-}SSIM}) + R` (direct, differentiable)
``proxy:<metric>``         :math:`\lambda[\alpha s (\bar M - \hat M) + (1-\alpha) 255^2 \mathrm{MSE}] + R`,
                           eq. (10), alternating with the proxy step of eq. (11) (the paper's method)
``pretrained-proxy:<m>``   as ``proxy:<m>`` but the proxy is pretrained once and frozen (Sec. III-C)
``direct:<m>``             :math:`\lambda[\alpha (\bar M - \min(M, \bar M)) + (1-\alpha) 255^2 \mathrm{MSE}] + R`
                           through the exact gradient of ``M`` (vmaf-torch for ``vmaf``/``vmaf_neg``),
                           no proxy: what optimising the metric itself gives, the proxy's reference
=========================  =====================================================================

``direct:*`` clips the differentiable score at the top (:math:`\min(M, \bar M)`), as libvmaf
clips the score it reports (not at the bottom, so that an untrained codec, which scores below 0
unclipped, still gets a gradient). Unclipped, VMAF rewards enhancement past 100 (a contrast-stretched
patch scores 117-119 where libvmaf says 100), so ``100 - VMAF`` would keep paying the codec to
enhance beyond what the reported metric can see. Clipping optimises exactly the reported
score: above the top the metric term has no gradient and the pixel term pulls the patch back
to fidelity. The released code's ``|100 - M̂|`` would instead push such patches down the scale,
a penalty the reported metric does not have either; it is ``proxy_abs`` for ``proxy:*`` runs.

Scales: ``lmbda`` is CompressAI's λ (the MSE of eq. (7) is taken on the 0..255 scale, i.e.
``proxiqa_lab.losses`` is called with ``lmbda * MSE_SCALE_255``). The metric term is brought to
the same units by a factor ``s`` (:func:`default_metric_scale`): 1 for metrics on a 0..100
scale (the released code adds ``100 - VMAF_p`` to the 255²-scaled MSE with equal weights) and
``8 * 255 = 2040`` for metrics bounded by 1 (the released code's SSIM loss,
``(batch - sum SSIM) * 255`` with batch 8).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from proxiqa_lab import losses

#: Objectives without a metric name.
PLAIN_OBJECTIVES = ("mse", "ssim", "ssim+ld", "ms-ssim")
#: Objectives followed by ``:<metric>``.
PROXY_KINDS = ("proxy", "pretrained-proxy")
#: The exact-gradient objective, for the metrics with a differentiable counterpart on the same luma.
DIRECT_KIND = "direct"
DIRECT_METRICS = ("vmaf", "vmaf_neg")
#: Name used for a user-supplied metric callable (``objective="proxy:custom"``, ``metric=fn``).
CUSTOM_METRIC = "custom"
#: Scale of a metric bounded by 1, from the released code's SSIM loss (batch 8 x 255).
UNIT_METRIC_SCALE = 8 * 255.0

MetricFn = Callable[[Tensor, Tensor], object]


def default_metric_scale(m_bar: float) -> float:
    """``s`` that brings ``M̄ - M̂`` to the units of the 255²-scaled MSE: 1 for 0..100 metrics, 2040 for 0..1."""
    return 1.0 if m_bar > 1 else UNIT_METRIC_SCALE


def allowed_objectives() -> list[str]:
    from proxiqa_lab.metrics import METRICS

    return [*PLAIN_OBJECTIVES, *(f"{k}:{m}" for k in PROXY_KINDS for m in METRICS),
            *(f"{DIRECT_KIND}:{m}" for m in DIRECT_METRICS)]


@dataclass(frozen=True)
class Objective:
    """A parsed objective string.

    Attributes:
        name: the string as given (``"proxy:vmaf"``).
        kind: ``mse``, ``ssim``, ``ssim+ld``, ``ms-ssim``, ``proxy``, ``pretrained-proxy`` or ``direct``.
        metric: the true metric M for proxy and direct kinds (a ``METRICS`` name or ``"custom"``), else ``None``.
        m_bar: M̄ of eq. (9) for proxy and direct kinds.
        metric_fn: a callable ``M(x, x_hat) -> (N,) scores`` for ``metric="custom"``.
    """

    name: str
    kind: str
    metric: str | None = None
    m_bar: float | None = None
    metric_fn: MetricFn | None = None

    @property
    def uses_proxy(self) -> bool:
        return self.kind in PROXY_KINDS

    @property
    def scores_metric(self) -> bool:
        """Whether the run logs the true metric of its reconstructions (proxy and direct kinds)."""
        return self.uses_proxy or self.kind == DIRECT_KIND

    @property
    def trains_proxy(self) -> bool:
        """Only ``proxy:*`` updates the proxy (eq. 11); ``pretrained-proxy:*`` keeps it frozen."""
        return self.kind == "proxy"

    def true_metric(self, x: Tensor, x_hat: Tensor) -> Tensor:
        """Per-pair true scores M(x, x̂) of a batch (x̂ clamped to [0, 1] and detached), float64 on the CPU.

        MS-SSIM of patches smaller than libvmaf's 176 px minimum is scored on reflect-padded copies
        (``score(..., ms_ssim_pad=True)``), a stand-in documented in :mod:`proxiqa_lab.metrics`.
        """
        x = x.detach()
        x_hat = x_hat.detach().clamp(0, 1)
        if self.metric_fn is not None:
            scores = self.metric_fn(x, x_hat)
        else:
            from proxiqa_lab.metrics import METRICS, score

            # libvmaf's MS-SSIM needs 176 px: smaller training patches are scored reflect-padded.
            pad = self.metric == "ms_ssim" and min(x.shape[-2:]) < METRICS["ms_ssim"].min_size
            scores = score(x, x_hat, metrics=(self.metric,), ms_ssim_pad=pad)[self.metric]
        scores = torch.as_tensor(scores, dtype=torch.float64).detach().cpu().reshape(-1)
        if scores.numel() != x.shape[0]:
            raise ValueError(f"the metric returned {scores.numel()} scores for a batch of {x.shape[0]} pairs")
        return scores


def parse_objective(
    objective: str, m_bar: float | None = None, metric_fn: MetricFn | None = None, need_callable: bool = True
) -> Objective:
    """Parse and check an objective string.

    Args:
        objective: one of :func:`allowed_objectives` (``"proxy:custom"`` with ``metric_fn``).
        m_bar: M̄; ``None`` takes ``METRICS[metric].m_bar`` (required for a custom metric).
        metric_fn: a callable ``M(x, x_hat)`` returning per-pair scores, for ``proxy:custom``.
        need_callable: require ``metric_fn`` for ``proxy:custom`` (off when only the string is checked).

    Returns:
        The :class:`Objective`.
    """
    if not isinstance(objective, str):
        raise ValueError(f"objective must be a string such as 'proxy:vmaf', got {type(objective).__name__}")
    text = objective.strip().lower()
    if text in PLAIN_OBJECTIVES:
        return Objective(text, text)
    kind, _, metric = text.partition(":")
    if kind == DIRECT_KIND and metric in DIRECT_METRICS:
        from proxiqa_lab.metrics import METRICS

        return Objective(text, kind, metric, float(METRICS[metric].m_bar if m_bar is None else m_bar))
    if kind == DIRECT_KIND:
        raise ValueError(f"objective {objective!r}: direct optimisation needs a metric with an exact gradient, "
                         f"one of {[f'{DIRECT_KIND}:{m}' for m in DIRECT_METRICS]}; for other metrics use "
                         f"'proxy:{metric or '<metric>'}'")
    if kind not in PROXY_KINDS or not metric:
        raise ValueError(f"unknown objective {objective!r}; allowed: {allowed_objectives()} "
                         f"(or 'proxy:custom' with a metric callable)")
    from proxiqa_lab.metrics import METRICS

    if metric == CUSTOM_METRIC or metric_fn is not None:
        if need_callable and (metric_fn is None or not callable(metric_fn)):
            raise ValueError(f"objective {objective!r} needs a metric callable M(x, x_hat) -> scores (metric=...)")
        if m_bar is None:
            raise ValueError("a custom metric needs its upper bound m_bar (M̄ of eq. 9)")
        return Objective(text, kind, metric, float(m_bar), metric_fn)
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r} in objective {objective!r}; allowed metrics: {sorted(METRICS)}; "
                         f"allowed objectives: {allowed_objectives()}")
    return Objective(text, kind, metric, float(METRICS[metric].m_bar if m_bar is None else m_bar))


def ms_ssim_small(x: Tensor, x_hat: Tensor) -> Tensor:
    """Differentiable MS-SSIM of each pair, usable on patches smaller than the 5-scale minimum.

    On 128² patches the standard 5-scale, 11-tap MS-SSIM does not fit (it needs > 160 px); this
    uses ``proxiqa_lab.metrics.differentiable.ms_ssim`` with its small-patch option.
    """
    from proxiqa_lab.metrics import differentiable

    return differentiable.ms_ssim(x, x_hat, **differentiable_small_kwargs(x.shape[-1]))


def differentiable_small_kwargs(size: int) -> dict:
    """Keyword arguments of ``metrics.differentiable.ms_ssim`` for ``size`` x ``size`` patches."""
    import inspect

    from proxiqa_lab.metrics import differentiable

    params = inspect.signature(differentiable.ms_ssim).parameters
    for name in ("small", "allow_small", "small_patches"):
        if name in params:
            return {name: True}
    if "win_size" in params:
        win = 11
        while win > 3 and (win - 1) * 2**4 >= size:
            win -= 2
        return {"win_size": win}
    return {}


def codec_loss(
    objective: Objective,
    x: Tensor,
    out: dict,
    *,
    lmbda: float,
    alpha: float,
    metric_scale: float | None = None,
    proxy: torch.nn.Module | None = None,
    proxy_abs: bool = False,
) -> dict[str, Tensor]:
    """The codec's loss for one batch and its terms (eq. 8, 10, 13 or 14 plus rate).

    Args:
        objective: from :func:`parse_objective`.
        x: the source batch in [0, 1].
        out: the codec's forward output ``{"x_hat", "likelihoods"}``.
        lmbda: CompressAI's λ (multiplies the 255²-scaled MSE).
        alpha: α of eqs. (10) and (13).
        metric_scale: ``s`` of the metric term; ``None`` uses :func:`default_metric_scale`.
        proxy: the (frozen) ProxIQA network, for proxy objectives. It sees x̂ clamped to [0, 1],
            as in the released code, so it is fed the same range it is trained on.
        proxy_abs: eq. (9) as ``|M̄ - M̂|`` (the released code) instead of ``M̄ - M̂``.

    Returns:
        ``{"loss", "bpp", "mse"}`` plus ``"proxy"`` (eq. 9) and ``"m_hat"`` (the proxy's scores) for proxy
        objectives, ``"proxy"`` (the metric term) and ``"m_exact"`` (the differentiable scores, unclipped)
        for ``direct:*``, or ``"ssim"``/``"ms_ssim"`` (batch mean, detached) for the SSIM objectives.
    """
    x_hat = out["x_hat"]
    n, _, h, w = x.shape
    bpp = losses.rate_loss(out["likelihoods"], n * h * w)
    mse = losses.pixel_loss(x, x_hat, "mse")
    lmbda_01 = lmbda * losses.MSE_SCALE_255  # losses.* take the MSE on the [0, 1] scale
    terms: dict[str, Tensor] = {"bpp": bpp, "mse": mse}
    kind = objective.kind
    if kind == "mse":
        terms["loss"] = losses.rd_loss(bpp, mse, lmbda_01)
        return terms
    if kind in ("ssim", "ssim+ld"):
        scale = UNIT_METRIC_SCALE if metric_scale is None else metric_scale
        l_ssim = losses.ssim_loss(x, x_hat)
        terms["ssim"] = (1 - l_ssim).detach()
        if kind == "ssim":
            terms["loss"] = losses.rd_loss(bpp, scale * l_ssim, lmbda)
        else:
            terms["loss"] = losses.total_loss(bpp, mse, scale * l_ssim / losses.MSE_SCALE_255, lmbda_01, alpha)
        return terms
    if kind == "ms-ssim":
        scale = UNIT_METRIC_SCALE if metric_scale is None else metric_scale
        value = ms_ssim_small(x, x_hat).mean()
        terms["ms_ssim"] = value.detach()
        terms["loss"] = losses.rd_loss(bpp, scale * (1 - value), lmbda)
        return terms
    scale = default_metric_scale(objective.m_bar) if metric_scale is None else metric_scale
    if kind == DIRECT_KIND:
        from proxiqa_lab.metrics import differentiable

        m_exact = differentiable.exact(objective.metric)(x, x_hat)
        l_m = losses.proxy_loss(m_exact.clamp(max=objective.m_bar), objective.m_bar)
        terms.update(proxy=l_m, m_exact=m_exact.detach())
        terms["loss"] = losses.total_loss(bpp, mse, scale * l_m / losses.MSE_SCALE_255, lmbda_01, alpha)
        return terms
    if proxy is None:
        raise ValueError(f"objective {objective.name!r} needs the ProxIQA network")
    m_hat = proxy(x, x_hat.clamp(0, 1))
    l_p = losses.proxy_loss(m_hat, objective.m_bar, absolute=proxy_abs)
    terms.update(proxy=l_p, m_hat=m_hat)
    terms["loss"] = losses.total_loss(bpp, mse, scale * l_p / losses.MSE_SCALE_255, lmbda_01, alpha)
    return terms

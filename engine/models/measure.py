"""Measure a network's cost table: its freeze blocks, conv/linear layers and FLOPs.

Run once at plan time, on the meta device (no memory, no arithmetic: a ViT-S takes a
fraction of a second) or, for a factory the meta device cannot build, on a CPU batch of
one. One forward pass under ``torch.utils.flop_counter.FlopCounterMode`` gives

* per conv/linear layer: weight shape, input/output size and multiply-accumulates
  (weight elements x output positions, the paper's convention; FlopCounterMode counts
  the same 2 x MACs for them);
* per block: every FLOP the counter sees while the block's modules run (attention's
  matmuls included); what exceeds its layers' 2 x MACs is ``extra_flops``, priced dense;
* per block: parameters, and an estimate of the activations kept for backward (every leaf
  module's output, the image for the first block) for the memory model;
* the forward order: a block may not run after a later one (a frozen prefix must never
  take an input that needs a gradient), else the block split is refused.

The result is a plain dict (engine.cost.arch.to_table's format) that the pure planner
reads through engine.cost.measured.
"""
from __future__ import annotations

from types import SimpleNamespace

import torch

from engine.config import ConfigError, model_spec

from .base import BlockModel


def _owners(model: BlockModel) -> dict[int, int]:
    owner: dict[int, int] = {}
    for i, block in enumerate(model.blocks):
        for m in block.modules():
            owner.setdefault(id(m), i)
    return owner


def measure(model: BlockModel, image_size: int, device: str | torch.device = "cpu",
            label: str = "", field: str = "model.name") -> dict:
    """The cost table of ``model`` at ``image_size`` (per sample)."""
    # Here, not at the top: the flop counter pulls in triton (0.13 s), and a run whose model
    # needs no measuring (the CIFAR ResNets, ResNet-50) imports this module all the same.
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    prunable = model.prunable()
    if not prunable:
        raise ConfigError([("model.name", f"{label or 'the model'} has no conv or linear layer: nothing for "
                                          "sparse training to prune")])
    nb = len(model.blocks)
    owner = _owners(model)
    names = {id(m): n for n, m in model.named_modules()}
    layer_of = {id(m): n for n, m in prunable}
    macs = {n: 0 for n, _ in prunable}
    hw: dict[str, tuple] = {}
    flops = [0.0] * nb
    stored = [0] * nb
    out_elems = [0] * nb
    widest = [0] * nb
    order: list[tuple[int, str]] = []      # (block, module) of each parametrised module call
    counter = FlopCounterMode(display=False)
    st = {"mark": 0, "cur": 0}

    def flush(to: int) -> None:
        total = counter.get_total_flops()
        flops[to] += total - st["mark"]
        st["mark"] = total

    def pre(mod, args):
        g = owner[id(mod)]
        flush(st["cur"])
        st["cur"] = g
        if any(True for _ in mod.parameters(recurse=False)):
            order.append((g, names.get(id(mod), type(mod).__name__)))

    def post(mod, args, out):
        g = owner[id(mod)]
        flush(g)
        if not isinstance(out, torch.Tensor):
            return
        if not any(True for _ in mod.children()):   # a leaf: its output is kept for backward
            stored[g] += out.numel()
            out_elems[g] = out.numel()
        lname = layer_of.get(id(mod))
        if lname is not None:
            x = args[0] if args and isinstance(args[0], torch.Tensor) else out
            w = mod.weight
            channels = out.shape[1] if isinstance(mod, torch.nn.Conv2d) else out.shape[-1]
            positions = out.numel() // max(1, out.shape[0] * channels)
            macs[lname] += w.numel() * positions
            if isinstance(mod, torch.nn.Conv2d):
                hw[lname] = (tuple(x.shape[-2:]), tuple(out.shape[-2:]), int(mod.stride[0]))
            else:
                hw[lname] = ((positions, 1), (positions, 1), 1)
            widest[g] = max(widest[g], (x.numel() + out.numel()) // x.shape[0])

    handles = []
    for m in model.modules():
        if id(m) in owner:
            handles.append(m.register_forward_pre_hook(pre))
            handles.append(m.register_forward_hook(post))
    was_training = model.training
    model.eval()                      # batch of one: BatchNorm needs its running statistics
    try:
        x = torch.zeros(1, 3, image_size, image_size, device=device)
        # the math attention kernel is a pair of matmuls the counter sees on every device
        # (the fused CPU kernel is not counted at all)
        with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), counter:
            model(x)
            flush(st["cur"])
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    _check_order(order, model.block_names, field)

    layer_block = model.layer_block()
    tags = model.layer_tags()
    layers = []
    for n, m in prunable:
        w = m.weight
        in_hw, out_hw, stride = hw.get(n, ((1, 1), (1, 1), 1))
        layers.append({"name": n, "kind": "conv" if w.dim() == 4 else "linear", "block": layer_block[n],
                       "weight_shape": list(w.shape), "stride": stride, "in_hw": list(in_hw),
                       "out_hw": list(out_hw), "macs": int(macs[n]), "params": w.numel(),
                       "bias": m.bias.numel() if getattr(m, "bias", None) is not None else 0,
                       "tags": sorted(tags[n])})
    stored[0] += 3 * image_size * image_size
    blocks = []
    for i, (name, block) in enumerate(zip(model.block_names, model.blocks)):
        mine = [l for l in layers if l["block"] == i]
        params = sum(p.numel() for p in {id(p): p for p in block.parameters()}.values())
        layer_params = sum(l["params"] + l["bias"] for l in mine)
        # the counter's FLOPs beyond the layers' 2 x MACs: attention and other matmuls
        extra = max(0.0, float(flops[i]) - 2.0 * sum(l["macs"] for l in mine))
        blocks.append({"name": name, "layers": [l["name"] for l in mine], "params": params,
                       "bn_params": params - layer_params, "activation_elems": stored[i],
                       "output_elems": out_elems[i], "grad_elems": out_elems[i] + widest[i],
                       "extra_flops": extra})
    return {"model": label, "width": 1.0, "num_classes": 0, "image_size": image_size,
            "input_elems": 3 * image_size * image_size, "layers": layers, "blocks": blocks,
            "blocks_from": getattr(model, "blocks_from", "the model's own blocks"),
            "warnings": list(getattr(model, "warnings", [])), "sequential": bool(getattr(model, "sequential", True))}


def _check_order(order: list[tuple[int, str]], block_names: list[str], field: str) -> None:
    """Blocks must run front to back: no module of a block after a module of a later one."""
    latest, at = -1, ""
    for g, mod in order:
        if g < latest:
            raise ConfigError([(field, f"block {block_names[g]!r} runs after block {block_names[latest]!r} in the "
                                       f"forward pass (module {mod} after {at}): freeze blocks must cover the "
                                       "model in forward order")])
        if g > latest:
            latest, at = g, mod


def measure_config(model_cfg, num_classes: int, image_size: int) -> dict:
    """Build the configured model without touching the run's random state and measure it:
    on the meta device, or on the CPU when the model cannot be built there."""
    from . import build_network  # engine.models: one place builds every network
    cfg = SimpleNamespace(model=model_cfg)
    field = "model.blocks" if getattr(model_cfg, "blocks", None) else "model.name"
    with torch.random.fork_rng(devices=[]):
        try:
            with torch.device("meta"):
                model = build_network(cfg, num_classes, weights=False)
            table = measure(model, image_size, "meta", model_cfg.name, field)
        except ConfigError:
            raise
        except Exception:   # noqa: BLE001 - code the meta device cannot run: real tensors, batch of one
            try:
                model = build_network(cfg, num_classes, weights=False)
                table = measure(model, image_size, "cpu", model_cfg.name, field)
            except ConfigError:
                raise
            except Exception as exc:  # noqa: BLE001 - the user's code failed: say where, not a traceback
                raise ConfigError([("model.name", f"{model_cfg.name} could not be built and run on a "
                                    f"{image_size} px image: {type(exc).__name__}: {exc}")]) from exc
    table["num_classes"] = int(num_classes)
    table["width"] = float(model_cfg.width) if model_spec.parse(model_cfg.name).kind == "builtin" else 1.0
    return table


def ensure_measured(model_cfg, num_classes: int, image_size: int) -> None:
    """Register the cost table of a measured model with the planner, once per shape."""
    from engine.cost import measured  # the pure registry
    if model_spec.is_measured(model_cfg.name) and not measured.known(model_cfg, num_classes, image_size):
        measured.register(model_cfg, num_classes, image_size, measure_config(model_cfg, num_classes, image_size))


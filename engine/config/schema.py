"""The run configuration: types, defaults, validation, loading and overrides.

Pure Python (PyYAML only): the GUI, the presets, the CLI and the tests share it, and it
must import without torch. A field's default is declared once, in the dataclasses below;
``FIELDS`` adds its type, allowed values and help (the GUI's form description and the
validator). Method names come from the method registry (engine.sparsity.methods).
"""
from __future__ import annotations

import copy
import dataclasses
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from engine import assets, atomic_file
from engine.config import model_spec, safe_yaml
from engine.sparsity.allocation import LAYER_GROUPS  # noqa: F401  (engine.config.LAYER_GROUPS)
from engine.sparsity.methods import METHODS, field_errors

# Built-in networks; model.name also takes timm:NAME and py:MODULE:CALLABLE (model_spec).
MODELS = model_spec.BUILTIN_MODELS
DATASETS = ("synthetic", "cifar10", "cifar100", "imagefolder")
# engine.sparsity.methods registers one plug-in per name (its schedule, fields and rule).
DST_ALGORITHMS = tuple(METHODS)   # one registry: engine.sparsity.methods
# auto: the method's own default (ERK for RigL, uniform for the others)
DISTRIBUTIONS = ("auto", "uniform", "erk", "er")
FREEZE_SCHEMES = ("single_shot", "single_shot_resume", "periodic", "delayed_periodic", "adaptive")
SIEVE_MODES = ("circular", "oneshot")
BAD_SAMPLE_POLICIES = ("skip", "error")
# Size bounds: generous, but they keep a typo (epochs=10000000) from exhausting memory.
MAX_EPOCHS = 100_000
MAX_SAMPLES = 50_000_000
MAX_SEED = 2**63 - 1
PRECISIONS = ("fp32", "bf16", "fp16")
DIST_BACKENDS = ("auto", "nccl", "gloo")
_GPU_LIST_RE = re.compile(r"^\s*\d+\s*(,\s*\d+\s*)*$")
# Names that ``sparsity.dense_layers`` accepts besides exact layer names.
_DEVICE_RE = re.compile(r"^(auto|cpu|cuda|cuda:\d+|mps)$")
_THREADS_RE = re.compile(r"^(auto|[1-9][0-9]{0,3})$")   # engine.training.threads: auto or 1..9999

PRESET_DIR = assets.path("presets")


class ConfigError(ValueError):
    """One or more invalid configuration values; ``errors`` lists (field, message)."""

    def __init__(self, errors: list[tuple[str, str]], source: str | None = None,
                 suggestions: dict[str, object] | None = None):
        self.errors = list(errors)
        self.source = source
        # field -> a value that would be accepted (e.g. the reachable freeze.target): the CLI
        # prints it as a `--set`, the studio offers it as a one-click fix
        self.suggestions = dict(suggestions or {})
        head = f"invalid configuration{f' in {source}' if source else ''}"
        lines = [f"  {f}: {m}" for f, m in self.errors]
        super().__init__(head + f" ({len(self.errors)} error{'s' if len(self.errors) != 1 else ''}):\n" + "\n".join(lines))


@dataclass
class ModelConfig:
    name: str = "resnet20"       # a built-in name, timm:NAME or py:MODULE:CALLABLE
    width: float = 1.0
    kwargs: dict = field(default_factory=dict)   # py: the factory's keyword arguments; timm: create_model's
    blocks: list = field(default_factory=list)   # freeze blocks as module-name prefixes (empty: derived)
    checkpoint: str | None = None                # initial weights from a local file (weights_only load)
    pretrained: bool = False                     # timm: pretrained weights, only from model.checkpoint


@dataclass
class DataConfig:
    name: str = "synthetic"
    root: str | None = None
    image_size: int = 32
    train_size: int = 5000   # synthetic only (real datasets have their own size)
    test_size: int = 1000    # synthetic only
    num_classes: int = 10    # synthetic only
    label_noise: float = 0.04  # synthetic: fraction of training labels flipped
    augment: bool = True
    workers: int = 2         # imagefolder decoding workers (in-memory datasets use none)
    on_bad_sample: str = "skip"   # imagefolder: a corrupt image is skipped (and counted) or an error


@dataclass
class OptimConfig:
    lr: float = 0.1
    end_lr: float = 4.0e-8
    momentum: float = 0.9
    weight_decay: float = 1.0e-4
    warmup_epochs: int = 0
    nesterov: bool = False


_MEST_EMS = METHODS["mest_ems"].fields
_MEST_EM = METHODS["mest_em"].fields


@dataclass
class SparsityConfig:
    target: float = 0.9
    algorithm: str = "mest_ems"
    distribution: str = "auto"
    dense_layers: list = field(default_factory=lambda: ["stem"])
    # the starting mask of the mask-updating methods: random positions, or MEST's
    # "magnitude" (the init's largest |w| at the target, then zero-valued random slots)
    init_mask: str = "random"
    # MEST's fields: their defaults are declared once, by the method plug-in (methods/mest.py)
    score_lambda: float = _MEST_EMS["score_lambda"]   # prune score |w| + lambda*|g|
    slack: float = _MEST_EMS["slack"]            # EM&S soft bound: grow back to target - slack (first segment)
    slack_late: float = _MEST_EMS["slack_late"]  # second segment's soft bound
    late_start: float = _MEST_EMS["late_start"]  # fraction of epochs where the second segment starts (90/160)
    search_end: float = _MEST_EMS["search_end"]  # fraction of epochs after which the mask is fixed (120/160)
    # mest_em: prune to target + delta, regrow to target; None = MEST's 0.2 (1 - target), then
    # em_delta_late (None = 0.1 (1 - target)) from late_start (0.92 -> 0.91 at 90%)
    em_delta: float | None = _MEST_EM["em_delta"]
    em_delta_late: float | None = _MEST_EM["em_delta_late"]
    # Fields of the other methods: None = the default of the method's paper (methods/*.py).
    update_fraction: float | None = None   # set: zeta (0.3); rigl: alpha (0.3, cosine-decayed)
    update_steps: int | None = None        # rigl: delta_T, steps between mask updates (100)
    update_every: int | None = None        # set: epochs between mask updates (None: interval)
    score_batches: int | None = None       # snip, grasp: seeded batches scored at init (1)
    temperature: float | None = None       # grasp: logits / T before the loss (official code: 200)
    reinit_fc: bool = True                 # grasp: Xavier-normal Linear weights on the scoring copy (official: on)


@dataclass
class FreezeConfig:
    target: float = 0.0          # fraction of training FLOPs to save by freezing; 0 = off
    scheme: str = "single_shot"
    layer_fraction: float = 0.667
    resume_epochs: int | None = None   # single_shot_resume: dR (default: interval)
    resume_lr: float = 0.01            # single_shot_resume: LR of the final all-blocks phase
    delay_epochs: int | None = None    # delayed_periodic: epochs before periods start (default: half the run)
    start_epoch: int | None = None     # t_frz set directly (paper Tables A4/A5) instead of searched for the target
    blocks: int | None = None          # leading blocks that freeze (default: those within layer_fraction)
    prune_frozen: bool = True          # a freezing block is pruned to the target density (false: keeps its mask)
    adaptive: AdaptiveFreezeConfig = field(default_factory=lambda: AdaptiveFreezeConfig())


@dataclass
class AdaptiveFreezeConfig:
    cka: float = 0.95               # freeze.scheme=adaptive: CKA a block must stay above
    mask_similarity: float = 0.9    # ... and its layers' structural similarity
    patience: int = 2               # ... for this many consecutive measurements
    # epochs between the decision and the freeze, over which the block's cosine is
    # re-planned to reach end_lr at its actual freeze epoch (0: freeze at once, at its LR)
    anneal_epochs: int = 2


@dataclass
class SieveConfig:
    ratio: float = 0.0           # fraction of the training set held out; 0 = off
    update_ratio: float = 0.3
    mode: str = "circular"
    oneshot_epoch: int | None = None   # oneshot: epoch of the removal (default: round(70/160 * epochs))


@dataclass
class CheckpointConfig:
    every: int = 10              # epochs between checkpoints; 0 = only at the end and on stop
    keep: int = 2                # periodic checkpoints kept besides last.pt


@dataclass
class AnalysisConfig:
    enabled: bool = False        # Section 3 measurements: mask similarity, CKA, gradient norms
    every: int | None = None     # epochs between measurements (default: interval)
    probe_size: int = 512        # training samples the CKA probe forwards use (fixed per seed)


@dataclass
class DistributedConfig:
    nproc_per_node: int = 1      # processes (GPUs) per machine; > 1 starts torchrun
    nnodes: int = 1              # machines; > 1 is started with torchrun on each (docs/distributed.md)
    backend: str = "auto"        # nccl on CUDA, gloo on the CPU
    timeout_s: int = 600         # every collective fails after this long instead of hanging
    gpus: str | None = None      # "0,2": the GPUs this machine uses (CUDA_VISIBLE_DEVICES); null = all


@dataclass
class TensorBoardTrackerConfig:
    enabled: bool = False
    dir: str | None = None           # null: <run folder>/tensorboard (a sweep's cells: one folder each)


@dataclass
class MLflowTrackerConfig:
    enabled: bool = False
    tracking_uri: str | None = None  # null: MLFLOW_TRACKING_URI, else MLflow's own default
    experiment: str = "spfde"
    parent_run_id: str | None = None  # set by a sweep or search: the run that groups its cells


@dataclass
class WandbTrackerConfig:
    enabled: bool = False
    project: str = "spfde"
    entity: str | None = None
    mode: str = "online"             # online | offline | disabled (as wandb.init's mode)
    dir: str | None = None           # null: WANDB_DIR, else the run folder


@dataclass
class TrackersConfig:
    group: str | None = None         # a sweep or search sets it: MLflow tag, W&B group
    flush_timeout_s: int = 30        # the end of a run waits at most this long for the trackers
    tensorboard: TensorBoardTrackerConfig = field(default_factory=TensorBoardTrackerConfig)
    mlflow: MLflowTrackerConfig = field(default_factory=MLflowTrackerConfig)
    wandb: WandbTrackerConfig = field(default_factory=WandbTrackerConfig)


@dataclass
class RunConfig:
    name: str = "run"
    seed: int = 0
    device: str = "auto"
    epochs: int = 30
    batch_size: int = 128
    interval: int = 5
    run_dir: str = "runs"
    threads: str = "auto"    # CPU intra-op threads: auto or a count (engine.training.threads)
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    sparsity: SparsityConfig = field(default_factory=SparsityConfig)
    freeze: FreezeConfig = field(default_factory=FreezeConfig)
    sieve: SieveConfig = field(default_factory=SieveConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    analysis: AnalysisConfig = field(default_factory=lambda: AnalysisConfig())
    precision: str = "fp32"      # fp32 | bf16 | fp16 (autocast; fp16 with a gradient scaler)
    channels_last: bool = False  # CUDA only
    compile: bool = False        # torch.compile of the model
    distributed: DistributedConfig = field(default_factory=DistributedConfig)
    trackers: TrackersConfig = field(default_factory=TrackersConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def get(self, dotted: str) -> Any:
        obj: Any = self
        for part in dotted.split("."):
            obj = getattr(obj, part)
        return obj

    def replace(self, **overrides: Any) -> RunConfig:
        """A validated copy with dotted-key overrides: ``cfg.replace(**{"sieve.ratio": 0.1})``."""
        d = self.to_dict()
        for k, v in overrides.items():
            _set_dotted(d, k, v)
        return from_dict(d)


_SECTIONS = {
    "model": ModelConfig, "data": DataConfig, "optim": OptimConfig, "sparsity": SparsityConfig,
    "freeze": FreezeConfig, "sieve": SieveConfig, "checkpoint": CheckpointConfig,
    "analysis": AnalysisConfig,
    "distributed": DistributedConfig, "trackers": TrackersConfig,
}
# Mappings nested inside a section: (section, field) -> dataclass
_SUBSECTIONS = {("freeze", "adaptive"): AdaptiveFreezeConfig,
                ("trackers", "tensorboard"): TensorBoardTrackerConfig, ("trackers", "mlflow"): MLflowTrackerConfig,
                ("trackers", "wandb"): WandbTrackerConfig}
TRACKERS = ("tensorboard", "mlflow", "wandb")
WANDB_MODES = ("online", "offline", "disabled")
# MLflow tracking URI schemes (a value without "://" is a local folder, as MLflow reads it)
MLFLOW_SCHEMES = ("http", "https", "file", "sqlite", "postgresql", "mysql", "mssql", "databricks")


@dataclass(frozen=True)
class FieldSpec:
    """One configuration field as the form and the validator see it."""
    path: str
    kind: str                        # int | float | str | bool | choice | list | path | mapping | model
    help: str
    choices: tuple = ()
    min: float | None = None
    max: float | None = None
    min_inclusive: bool = True
    max_inclusive: bool = True
    optional: bool = False           # None allowed
    group: str = ""


def _f(path, kind, help, group, **kw) -> FieldSpec:
    return FieldSpec(path=path, kind=kind, help=help, group=group, **kw)


# Groups follow the GUI form: model & data, sparsity & DST, freezing, sieving, training, device.
FIELDS: tuple[FieldSpec, ...] = (
    _f("name", "str", "Run name (the run directory starts with it)", "training"),
    _f("seed", "int", "Random seed: data split, masks, sieve and data order", "training", min=0, max=MAX_SEED),
    _f("device", "str", "auto, cpu, cuda or cuda:N", "device"),
    _f("epochs", "int", "Training epochs", "training", min=1, max=MAX_EPOCHS),
    _f("batch_size", "int", "Mini-batch size", "training", min=1, max=1_000_000),
    _f("interval", "int", "ΔT: epochs between DST mask updates, freeze steps and sieve updates", "training", min=1, max=MAX_EPOCHS),
    _f("run_dir", "path", "Folder where run directories are created", "training"),
    _f("threads", "str", "CPU threads: auto (every usable core, yielding under load) or a count", "device"),
    _f("model.name", "model", "Network: a built-in name, timm:NAME (a timm model) or py:MODULE:CALLABLE "
       "(your factory, called with num_classes and model.kwargs)", "model", choices=MODELS),
    _f("model.width", "float", "Width multiplier (2 = the paper's 2x ResNet-32; wrn28: the widen factor)", "model",
       min=0.0625, max=16),
    _f("model.kwargs", "mapping", "Keyword arguments of the py: factory or of timm.create_model", "model"),
    _f("model.blocks", "list", "Freeze blocks as module-name prefixes, front to back (empty: derived from the model)",
       "model"),
    _f("model.checkpoint", "path", "Initial weights: a local state_dict file (loaded with weights_only=True)", "model",
       optional=True),
    _f("model.pretrained", "bool", "timm: start from pretrained weights, read from model.checkpoint (nothing is "
       "downloaded)", "model"),
    _f("data.name", "choice", "Dataset", "model", choices=DATASETS),
    _f("data.root", "path", "Dataset folder (cifar10/cifar100 pickles or an ImageFolder tree)", "model", optional=True),
    _f("data.image_size", "int", "Input resolution (images are resized to it)", "model", min=8, max=1024),
    _f("data.train_size", "int", "Synthetic: training samples", "model", min=1, max=MAX_SAMPLES),
    _f("data.test_size", "int", "Synthetic: test samples", "model", min=1, max=MAX_SAMPLES),
    _f("data.num_classes", "int", "Synthetic: classes", "model", min=2, max=1000),
    _f("data.label_noise", "float", "Synthetic: fraction of mislabelled training samples", "model", min=0, max=0.5),
    _f("data.augment", "bool", "Random crop and horizontal flip", "model"),
    _f("data.workers", "int", "Decoding worker processes for imagefolder", "model", min=0, max=64),
    _f("optim.lr", "float", "Initial learning rate", "training", min=0, min_inclusive=False),
    _f("optim.end_lr", "float", "Learning rate at the end of the cosine schedule", "training", min=0),
    _f("optim.momentum", "float", "SGD momentum", "training", min=0, max=1, max_inclusive=False),
    _f("optim.weight_decay", "float", "Weight decay", "training", min=0),
    _f("optim.warmup_epochs", "int", "Linear warm-up epochs", "training", min=0, max=MAX_EPOCHS),
    _f("optim.nesterov", "bool", "Nesterov momentum", "training"),
    _f("sparsity.target", "float", "Target weight sparsity of the sparse layers (0 = dense)", "sparsity", min=0, max=1, max_inclusive=False),
    _f("sparsity.algorithm", "choice", "Sparse-training method: mest_ems, mest_em, static, set, rigl, snip or grasp", "sparsity", choices=DST_ALGORITHMS),
    _f("sparsity.distribution", "choice", "Layer-wise sparsity: auto (the method's default), uniform, ERK or ER (Erdős–Rényi, SET's)", "sparsity", choices=DISTRIBUTIONS),
    _f("sparsity.dense_layers", "list", "Layers kept dense: stem, head, shortcut or exact layer names", "sparsity"),
    _f("sparsity.init_mask", "choice", "Starting mask: random, or magnitude (MEST's: the init's largest |w| at the target, then zero-valued random slots up to the start density)", "sparsity", choices=("random", "magnitude")),
    _f("sparsity.score_lambda", "float", "λ in the prune score |w| + λ|g|", "sparsity", min=0),
    _f("sparsity.slack", "float", "EM&S soft bound: regrow to target - slack", "sparsity", min=0, max=1, max_inclusive=False),
    _f("sparsity.slack_late", "float", "Soft bound of the second segment", "sparsity", min=0, max=1, max_inclusive=False),
    _f("sparsity.late_start", "float", "Second segment start, as a fraction of the epochs", "sparsity", min=0, max=1),
    _f("sparsity.search_end", "float", "Mask search ends, as a fraction of the epochs", "sparsity", min=0, max=1),
    _f("sparsity.em_delta", "float", "mest_em: prune to target + delta before regrowing (default MEST's 0.2 x (1 - target))", "sparsity", min=0, max=1, max_inclusive=False, optional=True),
    _f("sparsity.em_delta_late", "float", "mest_em: delta from sparsity.late_start on (default MEST's 0.1 x (1 - target))", "sparsity", min=0, max=1, max_inclusive=False, optional=True),
    _f("sparsity.update_every", "int", "set: epochs between mask updates (empty: interval; SET's paper updates after every epoch: 1)", "sparsity", min=1, max=MAX_EPOCHS, optional=True),
    _f("sparsity.update_fraction", "float", "set: ζ, rigl: α (cosine-decayed): fraction of active weights replaced per update (default 0.3)", "sparsity", min=0, max=1, min_inclusive=False, max_inclusive=False, optional=True),
    _f("sparsity.update_steps", "int", "rigl: ΔT, training steps between mask updates (default 100)", "sparsity", min=1, max=1_000_000, optional=True),
    _f("sparsity.score_batches", "int", "snip, grasp: seeded training batches scored at initialisation (default 1)", "sparsity", min=1, max=1000, optional=True),
    _f("sparsity.reinit_fc", "bool", "grasp: score on a copy whose Linear weights are re-initialised (Xavier normal, seeded), as the official code (default on)", "sparsity"),
    _f("sparsity.temperature", "float", "grasp: the logits are divided by T before the loss, as the official code (default 200)", "sparsity", min=0, min_inclusive=False, optional=True),
    _f("freeze.target", "float", "Training FLOPs to save by layer freezing (0 = off)", "freeze", min=0, max=1, max_inclusive=False),
    _f("freeze.scheme", "choice", "Freezing scheme (Appendix B)", "freeze", choices=FREEZE_SCHEMES),
    _f("freeze.layer_fraction", "float", "Fraction of the layers allowed to freeze", "freeze", min=0, max=1, min_inclusive=False),
    _f("freeze.resume_epochs", "int", "single_shot_resume: epochs all blocks train again at the end", "freeze", min=1, max=MAX_EPOCHS, optional=True),
    _f("freeze.resume_lr", "float", "single_shot_resume: LR of that final phase", "freeze", min=0),
    _f("freeze.delay_epochs", "int", "delayed_periodic: epochs before the periods start", "freeze", min=0, max=MAX_EPOCHS, optional=True),
    _f("freeze.start_epoch", "int", "Freezing start epoch t_frz, set directly (empty: searched for the target)", "freeze", min=0, max=MAX_EPOCHS, optional=True),
    _f("freeze.blocks", "int", "Leading blocks that freeze (empty: those within layer_fraction)", "freeze", min=1, max=10_000, optional=True),
    _f("freeze.prune_frozen", "bool", "Prune a block to the target density when it freezes (off: it keeps its mask)", "freeze"),
    _f("sieve.ratio", "float", "Fraction of the training set removed (0 = off; at most 0.95, so that something is left to train on)", "sieve", min=0, max=0.95),
    _f("sieve.update_ratio", "float", "Fraction of the removed set swapped each update", "sieve", min=0, max=1, min_inclusive=False),
    _f("sieve.mode", "choice", "circular (SpFDE) or oneshot (MEST's data efficiency)", "sieve", choices=SIEVE_MODES),
    _f("sieve.oneshot_epoch", "int", "oneshot: epoch of the removal", "sieve", min=0, max=MAX_EPOCHS, optional=True),
    _f("checkpoint.every", "int", "Epochs between checkpoints (0 = end and stop only)", "training", min=0, max=MAX_EPOCHS),
    _f("checkpoint.keep", "int", "Periodic checkpoints kept besides the last", "training", min=0, max=1000),
    _f("data.on_bad_sample", "choice", "A corrupt image in training: skip it (counted in a bad_samples event) or stop with an error", "model", choices=BAD_SAMPLE_POLICIES),
    _f("freeze.adaptive.cka", "float", "adaptive: CKA with the previous measurement a block must keep", "freeze", min=0, max=1),
    _f("freeze.adaptive.mask_similarity", "float", "adaptive: structural similarity its sparse layers must keep", "freeze", min=0, max=1),
    _f("freeze.adaptive.patience", "int", "adaptive: consecutive measurements above both thresholds", "freeze", min=1, max=100),
    _f("freeze.adaptive.anneal_epochs", "int", "adaptive: epochs a stable block keeps training while its LR anneals to end_lr, then it freezes (0: at once)", "freeze", min=0, max=MAX_EPOCHS),
    _f("analysis.enabled", "bool", "Measure mask similarity, CKA and gradient norms during training", "analysis"),
    _f("analysis.every", "int", "Epochs between measurements (default: interval)", "analysis", min=1, max=MAX_EPOCHS, optional=True),
    _f("analysis.probe_size", "int", "Training samples in the fixed CKA probe set", "analysis", min=2, max=8192),
    _f("precision", "choice", "Arithmetic: fp32, bf16 autocast, or fp16 autocast with a gradient scaler (CUDA)", "device", choices=PRECISIONS),
    _f("channels_last", "bool", "Channels-last memory format (CUDA only)", "device"),
    _f("compile", "bool", "torch.compile the model (slow first epoch, faster later ones)", "device"),
    _f("distributed.nproc_per_node", "int", "Training processes on this machine (one per GPU); > 1 runs under torchrun", "device", min=1, max=1024),
    _f("distributed.nnodes", "int", "Machines in the job (> 1: start torchrun on each, see docs/distributed.md)", "device", min=1, max=4096),
    _f("distributed.backend", "choice", "Collective backend: auto (nccl on CUDA, gloo on the CPU), nccl or gloo", "device", choices=DIST_BACKENDS),
    _f("distributed.timeout_s", "int", "Seconds after which a collective fails instead of hanging", "device", min=10, max=86400),
    _f("distributed.gpus", "str", "GPUs of this machine to use, e.g. 0,2 (null: all)", "device", optional=True),
    _f("trackers.tensorboard.enabled", "bool", "Log live to TensorBoard (pip install 'spfde-studio[tensorboard]')", "trackers"),
    _f("trackers.tensorboard.dir", "path", "TensorBoard log folder (empty: <run folder>/tensorboard)", "trackers", optional=True),
    _f("trackers.mlflow.enabled", "bool", "Log live to MLflow (pip install 'spfde-studio[mlflow]')", "trackers"),
    _f("trackers.mlflow.tracking_uri", "str", "MLflow tracking URI, e.g. http://127.0.0.1:5000 (empty: MLFLOW_TRACKING_URI)", "trackers", optional=True),
    _f("trackers.mlflow.experiment", "str", "MLflow experiment name", "trackers"),
    _f("trackers.mlflow.parent_run_id", "str", "MLflow run that groups this run (a sweep or search sets it)", "trackers", optional=True),
    _f("trackers.wandb.enabled", "bool", "Log live to Weights & Biases (pip install 'spfde-studio[wandb]')", "trackers"),
    _f("trackers.wandb.project", "str", "W&B project", "trackers"),
    _f("trackers.wandb.entity", "str", "W&B entity (team or user; empty: your default)", "trackers", optional=True),
    _f("trackers.wandb.mode", "choice", "W&B mode: online, offline (sync later with `wandb sync`) or disabled", "trackers", choices=WANDB_MODES),
    _f("trackers.wandb.dir", "path", "Folder for W&B's files (empty: WANDB_DIR, else the run folder)", "trackers", optional=True),
    _f("trackers.group", "str", "Group of runs in the trackers (MLflow tag, W&B group; a sweep or search sets it)", "trackers", optional=True),
    _f("trackers.flush_timeout_s", "int", "Seconds the end of a run waits at most for the trackers to send what is queued", "trackers", min=1, max=3600),
)
FIELD_BY_PATH = {f.path: f for f in FIELDS}


def _fmt(v: Any) -> str:
    return json.dumps(v) if isinstance(v, str) else repr(v)


def _check_field(spec: FieldSpec, value: Any) -> str | None:
    """Return an error message for one value, or None."""
    if value is None:
        return None if spec.optional else f"is required, got null ({spec.help.lower()})"
    msg = _check_type(spec, value)
    if msg is None and spec.kind in ("int", "float"):
        msg = _check_range(spec, value)
    return msg


def _check_type(spec: FieldSpec, value: Any) -> str | None:
    kind = spec.kind
    if kind == "bool" and not isinstance(value, bool):
        return f"expected true or false, got {_fmt(value)}"
    if kind == "int" and (isinstance(value, bool) or not isinstance(value, int)):
        return f"expected an integer, got {_fmt(value)}"
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"expected a number, got {_fmt(value)}"
        if not math.isfinite(value):
            return f"expected a finite number, got {_fmt(value)}"
    if kind in ("str", "path") and (not isinstance(value, str) or not value.strip()):
        return f"expected a non-empty string, got {_fmt(value)}"
    if kind == "choice" and value not in spec.choices:
        return f"expected one of {', '.join(spec.choices)}; got {_fmt(value)}"
    if kind == "model":
        try:
            model_spec.parse(value)
        except ValueError as exc:
            return str(exc)
    if kind == "mapping" and (not isinstance(value, dict) or not all(isinstance(k, str) for k in value)):
        return f"expected a mapping of names to values, got {_fmt(value)}"
    if kind == "list" and (not isinstance(value, list) or not all(isinstance(x, str) for x in value)):
        return f"expected a list of names, got {_fmt(value)}"
    return None


def _check_range(spec: FieldSpec, value: Any) -> str | None:
    lo, hi = spec.min, spec.max
    bad_lo = lo is not None and (value < lo if spec.min_inclusive else value <= lo)
    bad_hi = hi is not None and (value > hi if spec.max_inclusive else value >= hi)
    if not (bad_lo or bad_hi):
        return None
    left = "" if lo is None else f"{'>=' if spec.min_inclusive else '>'} {lo:g}"
    right = "" if hi is None else f"{'<=' if spec.max_inclusive else '<'} {hi:g}"
    rng = " and ".join(x for x in (left, right) if x)
    return f"must be {rng}, got {_fmt(value)}"


def validate(cfg: RunConfig) -> list[tuple[str, str]]:
    """All problems in a configuration, as (dotted field, message); empty when valid.

    Each field is checked alone first (FIELDS); the rules between fields then skip any
    field that is already wrong (``bad``), so one mistake gives one message."""
    errors: list[tuple[str, str]] = []
    for spec in FIELDS:
        msg = _check_field(spec, cfg.get(spec.path))
        if msg:
            errors.append((spec.path, msg))
    bad = {f for f, _ in errors}
    for rules in (_model_errors, _format_errors, _schedule_errors, _sparsity_errors, _data_errors, _device_errors,
                  _tracker_errors):
        errors += rules(cfg, bad)
    return errors


def _model_errors(cfg: RunConfig, bad: set) -> list[tuple[str, str]]:
    """Model fields that only some kinds of model take."""
    errors: list[tuple[str, str]] = []
    if "model.name" in bad:
        return errors
    m = cfg.model
    spec = model_spec.parse(m.name)
    if m.pretrained and "model.pretrained" not in bad and not m.checkpoint:
        errors.append(("model.pretrained", "nothing is downloaded at run time: save the pretrained weights once "
                       "(e.g. torch.save(timm.create_model(NAME, pretrained=True).state_dict(), 'w.pt') on a "
                       "machine with internet) and set model.checkpoint: w.pt"))
    if spec.kind != "builtin" and "model.width" not in bad and m.width != 1:
        errors.append(("model.width", f"{spec.kind}: models have no width multiplier (set it in model.kwargs); "
                       f"expected 1, got {m.width:g}"))
    if spec.kind == "builtin" and m.kwargs and "model.kwargs" not in bad:
        errors.append(("model.kwargs", f"only timm: and py: models take keyword arguments; {m.name} has none"))
    if not spec.measured and m.blocks and "model.blocks" not in bad:
        errors.append(("model.blocks", f"{m.name} has fixed freeze blocks (docs/architecture.md); "
                       "model.blocks applies to timm:, py: and wrn28 models"))
    if spec.kind == "timm" and cfg.analysis.enabled:
        errors.append(("analysis.enabled", "the Section 3 analyses read each freeze block's output, and a timm "
                       "model runs as a whole; set analysis.enabled: false"))
    if "model.blocks" not in bad and any(not b.strip() for b in m.blocks):
        errors.append(("model.blocks", "block prefixes must not be empty"))
    return errors


def fixes(cfg: RunConfig, errors: list[tuple[str, str]]) -> dict[str, object]:
    """The one value that settles an error, for the errors that have one: a preset's
    ``model.width`` and ``analysis.enabled`` once its model becomes a timm: or py: name (the
    first thing a user tries). The CLI prints them as ``--set``, the studio as a one-click fix."""
    fields = {f for f, _ in errors}
    if "model.name" in fields:
        return {}
    spec = model_spec.parse(cfg.model.name)
    out: dict[str, object] = {}
    if spec.kind != "builtin" and "model.width" in fields and cfg.model.width != 1:
        out["model.width"] = 1
    if spec.kind == "timm" and "analysis.enabled" in fields and cfg.analysis.enabled:
        out["analysis.enabled"] = False
    return out


def _format_errors(cfg: RunConfig, bad: set) -> list[tuple[str, str]]:
    """Fields whose text has a format of its own."""
    errors: list[tuple[str, str]] = []
    if "device" not in bad and not _DEVICE_RE.fullmatch(cfg.device):
        errors.append(("device", f"expected auto, cpu, cuda or cuda:N, got {_fmt(cfg.device)}"))
    if "threads" not in bad and not _THREADS_RE.match(cfg.threads):
        errors.append(("threads", "expected auto or a positive number of threads (at most 9999), "
                                  f"got {_fmt(cfg.threads)}"))
    return errors


def _schedule_errors(cfg: RunConfig, bad: set) -> list[tuple[str, str]]:
    """Epoch counts and LRs that must fit inside the run."""
    errors: list[tuple[str, str]] = []
    epochs_ok = "epochs" not in bad
    if "optim.warmup_epochs" not in bad and epochs_ok and cfg.optim.warmup_epochs >= cfg.epochs:
        errors.append(("optim.warmup_epochs", f"must be smaller than epochs ({cfg.epochs}), got {cfg.optim.warmup_epochs}"))
    if "interval" not in bad and epochs_ok and cfg.interval > cfg.epochs:
        errors.append(("interval", f"must be at most epochs ({cfg.epochs}), got {cfg.interval}"))
    if "optim.end_lr" not in bad and "optim.lr" not in bad and cfg.optim.end_lr > cfg.optim.lr:
        errors.append(("optim.end_lr", f"must not exceed optim.lr ({cfg.optim.lr:g}), got {cfg.optim.end_lr:g}"))
    if not {"sieve.ratio", "sieve.mode", "sieve.oneshot_epoch"} & bad and cfg.sieve.ratio > 0 and cfg.sieve.mode == "oneshot" \
            and cfg.sieve.oneshot_epoch is not None and epochs_ok and cfg.sieve.oneshot_epoch >= cfg.epochs:
        errors.append(("sieve.oneshot_epoch", f"must be smaller than epochs ({cfg.epochs}), got {cfg.sieve.oneshot_epoch}"))
    if "freeze.start_epoch" not in bad and epochs_ok and cfg.freeze.start_epoch is not None \
            and cfg.freeze.start_epoch >= cfg.epochs:
        errors.append(("freeze.start_epoch", f"must be smaller than epochs ({cfg.epochs}), got {cfg.freeze.start_epoch}"))
    if "analysis.every" not in bad and epochs_ok and cfg.analysis.every is not None \
            and cfg.analysis.every > cfg.epochs:
        errors.append(("analysis.every", f"must be at most epochs ({cfg.epochs}), got {cfg.analysis.every}"))
    if cfg.freeze.scheme == "adaptive" and cfg.freeze.target > 0 and not cfg.analysis.enabled:
        errors.append(("freeze.scheme", "adaptive freezing is driven by the analyses: set analysis.enabled: true"))
    return errors


def _sparsity_errors(cfg: RunConfig, bad: set) -> list[tuple[str, str]]:
    """MEST's segment bounds, the chosen method's own fields, the kept-dense layer names."""
    errors: list[tuple[str, str]] = []
    sp = cfg.sparsity
    if sp.algorithm == "mest_ems" and not {"sparsity.late_start", "sparsity.search_end"} & bad \
            and sp.late_start > sp.search_end:
        errors.append(("sparsity.late_start", f"must not be after sparsity.search_end ({sp.search_end:g}), got {sp.late_start:g}"))
    if sp.algorithm == "mest_ems" and not {"sparsity.slack", "sparsity.target"} & bad and sp.target > 0 and sp.slack > sp.target:
        errors.append(("sparsity.slack", f"must not exceed sparsity.target ({sp.target:g}), got {sp.slack:g}"))
    for key in ("em_delta", "em_delta_late"):
        delta = getattr(sp, key)
        if sp.algorithm == "mest_em" and delta is not None and not {f"sparsity.{key}", "sparsity.target"} & bad \
                and sp.target + delta >= 1:
            errors.append((f"sparsity.{key}", f"target + {key} must stay below 1, got {sp.target:g} + {delta:g}"))
    if "sparsity.algorithm" not in bad:
        errors += [e for e in field_errors(cfg, SparsityConfig()) if e[0] not in bad]
    if "sparsity.dense_layers" not in bad and any(not name.strip() for name in sp.dense_layers):
        errors.append(("sparsity.dense_layers", "layer names must not be empty"))
    return errors


def _data_errors(cfg: RunConfig, bad: set) -> list[tuple[str, str]]:
    errors: list[tuple[str, str]] = []
    if cfg.data.name != "synthetic" and "data.name" not in bad and not cfg.data.root:
        errors.append(("data.root", f"is required for data.name={cfg.data.name} (the folder holding the dataset; "
                                    "nothing is downloaded)"))
    if "data.num_classes" not in bad and "data.train_size" not in bad and cfg.data.name == "synthetic" \
            and cfg.data.train_size < cfg.data.num_classes:
        errors.append(("data.train_size", f"must be at least data.num_classes ({cfg.data.num_classes}), "
                                          f"got {cfg.data.train_size}"))
    return errors


def _device_errors(cfg: RunConfig, bad: set) -> list[tuple[str, str]]:
    """Speed and distributed settings that cannot apply to the chosen device. ``device: auto``
    is checked again when the engine resolves it (engine.training.precision.check)."""
    errors: list[tuple[str, str]] = []
    on_cpu = cfg.device == "cpu"
    if on_cpu and cfg.precision == "fp16" and "precision" not in bad:
        errors.append(("precision", "fp16 needs CUDA (its gradient scaler and fast kernels are GPU-only); "
                                    "use bf16 or fp32 with device=cpu"))
    if on_cpu and cfg.channels_last is True:
        errors.append(("channels_last", "applies to CUDA only (the CPU convolution backward of torch 2.14 "
                                        "corrupts memory on channels-last batches); set it to false with device=cpu"))
    dc = cfg.distributed
    if dc.backend == "nccl" and (on_cpu or cfg.device == "mps"):
        errors.append(("distributed.backend", f"nccl needs CUDA GPUs, but device={cfg.device}; use gloo or auto"))
    world_ok = not {"distributed.nproc_per_node", "distributed.nnodes", "batch_size"} & bad
    if world_ok:
        world = dc.nproc_per_node * dc.nnodes
        if world > 1 and cfg.batch_size % world:
            errors.append(("batch_size", f"is the global batch, split evenly over {world} processes "
                                         f"(distributed.nproc_per_node x nnodes); {cfg.batch_size} is not a multiple of {world}"))
        if world > 1 and cfg.device.startswith("cuda:"):
            errors.append(("device", f"{cfg.device} names one GPU, but the run has {world} processes; "
                                     "use device=cuda (or auto) and distributed.gpus to choose the GPUs"))
    if dc.gpus is not None and "distributed.gpus" not in bad:
        if not _GPU_LIST_RE.match(dc.gpus):
            errors.append(("distributed.gpus", f"expected GPU indices separated by commas (e.g. 0,2), got {_fmt(dc.gpus)}"))
        else:
            ids = [int(x) for x in dc.gpus.split(",")]
            if len(set(ids)) != len(ids):
                errors.append(("distributed.gpus", f"lists a GPU twice: {dc.gpus}"))
            elif "distributed.nproc_per_node" not in bad and len(ids) < dc.nproc_per_node:
                errors.append(("distributed.gpus", f"lists {len(ids)} GPU(s) for distributed.nproc_per_node="
                                                   f"{dc.nproc_per_node} (one GPU per process)"))
            if on_cpu:
                errors.append(("distributed.gpus", "chooses GPUs, but device=cpu; set it to null"))
    return errors


def mask_uri(uri: str) -> str:
    """A URI with its password (or token) replaced by ***: what events, logs and errors show."""
    return re.sub(r"(://[^:/@\s]+:)[^@/\s]*@", r"\1***@", re.sub(r"(://)[^:/@\s]+@", r"\1***@", uri))


def _tracker_errors(cfg: RunConfig, bad: set) -> list[tuple[str, str]]:
    """The MLflow tracking URI must be one MLflow can open (its password never shown)."""
    uri = cfg.trackers.mlflow.tracking_uri
    if uri is None or "trackers.mlflow.tracking_uri" in bad:
        return []
    problem = _uri_problem(uri.strip())
    if problem is None:
        return []
    return [("trackers.mlflow.tracking_uri", f"{problem}, got {_fmt(mask_uri(uri))} (expected e.g. "
                                             "http://127.0.0.1:5000, sqlite:///mlflow.db, file:///path or a folder)")]


def _uri_problem(uri: str) -> str | None:
    from urllib.parse import urlsplit
    if any(c.isspace() for c in uri):
        return "a URI holds no spaces"
    if "://" not in uri:
        scheme = uri.split(":", 1)[0].lower() if ":" in uri else ""
        if scheme in MLFLOW_SCHEMES or scheme.startswith("http"):
            return "the scheme needs '://' after it (http://host:port)"
        return None                      # a local folder (or "databricks"), as MLflow reads it
    try:
        parts = urlsplit(uri)
        port = parts.port                # a non-numeric or out-of-range port raises here
    except ValueError as exc:
        return f"malformed URI ({exc})"
    scheme = parts.scheme.lower()
    if scheme not in MLFLOW_SCHEMES:
        return f"unknown scheme {scheme!r}; expected one of {', '.join(MLFLOW_SCHEMES)}"
    if scheme in ("http", "https") and not parts.hostname:
        return "an http(s) URI needs a host"
    if port == 0:
        return "port 0 is not a server's port"
    return None


def gpu_list(cfg: RunConfig) -> list[int] | None:
    """The GPU indices of ``distributed.gpus``, or None for all."""
    g = cfg.distributed.gpus
    return None if g is None else [int(x) for x in g.split(",")]


def world_size(cfg: RunConfig) -> int:
    return cfg.distributed.nproc_per_node * cfg.distributed.nnodes


def _coerce(spec: FieldSpec | None, value: Any) -> Any:
    # YAML reads "1e-4" as a string and JSON has no int/float split: accept the obvious forms.
    if spec is None or value is None:
        return value
    if spec.kind == "float" and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    if spec.kind == "float" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if spec.kind == "int" and isinstance(value, float) and value.is_integer():
        return int(value)
    if spec.kind == "list" and isinstance(value, str):
        return [value]
    if spec.path == "threads" and isinstance(value, int) and not isinstance(value, bool):
        return str(value)                # threads: 4 in YAML is the count "4"
    if spec.path == "distributed.gpus" and isinstance(value, int) and not isinstance(value, bool):
        return str(value)        # gpus: 1 in YAML
    return value


def from_dict(d: dict | None, source: str | None = None) -> RunConfig:
    """Build and validate; raise ConfigError listing every bad or unknown field."""
    d = copy.deepcopy(d or {})
    if not isinstance(d, dict):
        raise ConfigError([("<root>", f"expected a mapping of fields, got {type(d).__name__}")], source)
    errors: list[tuple[str, str]] = []
    top_names = {f.name for f in dataclasses.fields(RunConfig)}
    kwargs: dict[str, Any] = {}
    for key, value in d.items():
        if key not in top_names:
            errors.append((str(key), f"unknown field; expected one of {', '.join(sorted(top_names))}"))
            continue
        if key in _SECTIONS:
            cls = _SECTIONS[key]
            if value is None:
                value = {}
            if not isinstance(value, dict):
                errors.append((key, f"expected a mapping, got {_fmt(value)}"))
                continue
            names = {f.name for f in dataclasses.fields(cls)}
            sub = {}
            for k2, v2 in value.items():
                if k2 not in names and key == "trackers":
                    errors.append((f"{key}.{k2}", f"unknown tracker or field; expected a tracker ({', '.join(TRACKERS)}) "
                                                  "or group, flush_timeout_s"))
                elif k2 not in names:
                    errors.append((f"{key}.{k2}", f"unknown field; expected one of {', '.join(sorted(names))}"))
                elif (key, k2) in _SUBSECTIONS:
                    sub[k2] = _subsection(f"{key}.{k2}", _SUBSECTIONS[(key, k2)], v2, errors)
                else:
                    sub[k2] = _coerce(FIELD_BY_PATH.get(f"{key}.{k2}"), v2)
            kwargs[key] = cls(**sub)
        else:
            kwargs[key] = _coerce(FIELD_BY_PATH.get(key), value)
    cfg = RunConfig(**kwargs)
    errors += validate(cfg)
    if errors:
        raise ConfigError(errors, source, suggestions=fixes(cfg, errors))
    return cfg


def _subsection(path: str, cls, value: Any, errors: list) -> Any:
    """A mapping nested in a section (freeze.adaptive): unknown keys are errors."""
    if value is None:
        return cls()
    if not isinstance(value, dict):
        errors.append((path, f"expected a mapping, got {_fmt(value)}"))
        return cls()
    names = {f.name for f in dataclasses.fields(cls)}
    bad = [k for k in value if k not in names]
    for k in bad:
        errors.append((f"{path}.{k}", f"unknown field; expected one of {', '.join(sorted(names))}"))
    return cls(**{k: _coerce(FIELD_BY_PATH.get(f"{path}.{k}"), v) for k, v in value.items() if k not in bad})


def parse_override(text: str) -> tuple[str, Any]:
    """``key=value`` with a dotted key; the value is read as YAML (0.9, true, null, [a, b])."""
    if "=" not in text:
        raise ConfigError([(text, "expected key=value (for example sparsity.target=0.95)")])
    key, raw = text.split("=", 1)
    key = key.strip()
    try:
        value = safe_yaml.load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        shown = raw if len(raw) <= 60 else f"{raw[:40]}... ({len(raw):,} characters)"
        raise ConfigError([(key, f"could not read value {shown!r} as YAML: {exc}")]) from None
    return key, value


def _set_dotted(d: dict, key: str, value: Any) -> None:
    parts = key.split(".")
    cur = d
    for p in parts[:-1]:
        nxt = cur.get(p)
        if not isinstance(nxt, dict):
            nxt = {}
            cur[p] = nxt
        cur = nxt
    cur[parts[-1]] = value


def apply_overrides(d: dict, overrides: list[str] | None) -> dict:
    d = copy.deepcopy(d)
    for text in overrides or []:
        k, v = parse_override(text)
        _set_dotted(d, k, v)
    return d


def read_file(path: str | Path) -> dict:
    """Read a YAML or JSON configuration file into a plain dict (no validation)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError([("--config", f"file not found: {p}")], str(p))
    try:
        text = p.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError([("<file>", f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); "
                                      "save the file as UTF-8")], str(p)) from None
    except OSError as exc:
        raise ConfigError([("<file>", f"cannot be read: {exc}")], str(p)) from None
    try:
        data = json.loads(text) if p.suffix.lower() == ".json" else safe_yaml.load(text, _UniqueKeyLoader)
    except (json.JSONDecodeError, yaml.YAMLError, RecursionError, ValueError) as exc:
        raise ConfigError([("<file>", f"not valid {'JSON' if p.suffix.lower() == '.json' else 'YAML'}: {exc}")], str(p)) from None
    if data is None:
        # An empty file is almost always a mistake (a failed save, a wrong path): not "all defaults".
        raise ConfigError([("<file>", "is empty; write at least one field (e.g. name: myrun) to use the defaults "
                                      "for the rest")], str(p))
    if not isinstance(data, dict):
        raise ConfigError([("<root>", f"expected a mapping of fields, got {type(data).__name__}")], str(p))
    return data


class _UniqueKeyLoader(yaml.SafeLoader):
    """safe_load that refuses a key given twice in one mapping (YAML keeps the last silently)."""


def _unique_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(None, None, f"a {type(key).__name__} cannot be a key",
                                                    key_node.start_mark) from None
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def load(path: str | Path, overrides: list[str] | None = None) -> RunConfig:
    """Load a YAML/JSON file, apply ``--set`` overrides, validate."""
    # a bad --set value is not in the file: say the overrides were part of what was read
    src = f"{path} with the --set overrides" if overrides else str(path)
    return from_dict(apply_overrides(read_file(path), overrides), source=src)


def preset_path(name: str) -> Path:
    p = PRESET_DIR / f"{name}.yaml"
    if not p.is_file():
        avail = ", ".join(list_presets()) or "none"
        raise ConfigError([("preset", f"unknown preset {name!r}; available: {avail}")])
    return p


def list_presets() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def load_preset(name: str, overrides: list[str] | None = None) -> RunConfig:
    return load(preset_path(name), overrides)


def to_yaml(cfg: RunConfig) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)


def save(cfg: RunConfig, path: str | Path) -> None:
    p = Path(path)
    text = json.dumps(cfg.to_dict(), indent=2) if p.suffix.lower() == ".json" else to_yaml(cfg)
    atomic_file.write_text(p, text)


# Derived quantities shared by the planner and the engine, so both use one definition.
def sieve_oneshot_epoch(cfg: RunConfig) -> int:
    if cfg.sieve.oneshot_epoch is not None:
        return cfg.sieve.oneshot_epoch
    return int(round(70 / 160 * cfg.epochs))


def flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    """A nested configuration dict as {dotted field: value} (the names ``--set`` takes)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def analysis_every(cfg: RunConfig) -> int:
    return cfg.analysis.every if cfg.analysis.every is not None else cfg.interval


def freeze_resume_epochs(cfg: RunConfig) -> int:
    return cfg.freeze.resume_epochs if cfg.freeze.resume_epochs is not None else cfg.interval


def freeze_enabled(cfg: RunConfig) -> bool:
    """Freezing is on with a FLOPs target or with a start epoch set directly."""
    return cfg.freeze.target > 0 or cfg.freeze.start_epoch is not None


def sieve_removed(cfg: RunConfig, train_size: int) -> int:
    """Training samples the sieve holds out of ``train_size``: round(sieve.ratio * N)."""
    return int(round(cfg.sieve.ratio * train_size))


def sieve_swapped(cfg: RunConfig, removed: int) -> int:
    """Samples a circular sieve update swaps: round(sieve.update_ratio * removed)."""
    return int(round(cfg.sieve.update_ratio * removed))

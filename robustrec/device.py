"""Devices: one resolver for every ``--device`` (train, evaluate, perturb, flatness, landscape,
features extract, captions) and the helpers that keep tensors on a model's device.

``resolve_device("auto" | "cpu" | "cuda" | "cuda:N")`` returns a ``torch.device``: ``auto`` is
the first CUDA device when torch sees one, else the CPU; ``cuda`` on a machine without CUDA, a
``cuda:N`` past the last GPU, or any other name is a one-line ``ConfigError`` raised before any
work starts. (MPS is refused: the sparse graph products most models use have no MPS kernels.)

Where what lives (see also docs/training.md, Devices):

- models, their feature buffers and every derived graph (sparse adjacencies, kNN graphs, user
  graphs) follow ``model.to(device)`` (``Recommender._apply``); graphs are *built* on the CPU
  (scipy, cached by content) and moved, so they are identical on every device;
- the BPR sampler, edge-sampling weights and the noise / direction generators stay on the CPU
  (seeded numpy / torch CPU generators): batches, kept edges and perturbations are the same
  draws on every device, and only their results move;
- evaluation scores on the model's device and copies the top-K ids back.

Determinism: on the CPU a seeded run is bitwise reproducible for a given torch build and
thread count (the trainer turns deterministic algorithms on). On CUDA the trainer turns them on
too (``warn_only``: ops without a deterministic kernel warn instead of failing), and
``resolve_device`` sets ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` (unless already set) so cuBLAS
can honour it; dropout draws from the CUDA generator, so CPU and CUDA runs of one seed are
different runs, and float sums in another order make their numbers differ in the last bits.
"""

from __future__ import annotations

import functools
import os
from typing import Any

from robustrec.errors import ConfigError

CHOICES = "auto, cpu, cuda, cuda:N"
#: cuBLAS needs a fixed workspace to give deterministic results (PyTorch "Reproducibility")
CUBLAS_WORKSPACE = ":4096:8"


def resolve_device(spec: Any = "auto", flag: str = "--device"):
    """The ``torch.device`` that ``spec`` names (a string, a ``torch.device`` or None = auto).

    One-line ConfigErrors: CUDA asked for where torch has none, an index past the last GPU,
    an unknown name.
    """
    import torch

    text = "auto" if spec is None else str(spec).strip().lower()
    if text == "auto":
        return _cuda(0, flag, text) if torch.cuda.is_available() else torch.device("cpu")
    if text == "cpu":
        return torch.device("cpu")
    if text == "cuda" or text.startswith("cuda:"):
        index = text.partition(":")[2]
        if text != "cuda" and not index.isdigit():
            raise ConfigError(f"{flag} {spec}: a CUDA device is cuda or cuda:N with N a GPU number; "
                              f"choose one of {CHOICES}")
        return _cuda(int(index) if index else None, flag, text)
    raise ConfigError(f"{flag} {spec!s}: unknown device; choose one of {CHOICES}")


def _cuda(index: int | None, flag: str, text: str):
    import torch

    if not torch.cuda.is_available():
        build = f"CUDA {torch.version.cuda} build, but no GPU is visible" if torch.version.cuda else "CPU build"
        raise ConfigError(f"{flag} {text}: CUDA is not available on this machine (torch {torch.__version__}, "
                          f"{build}); use {flag} cpu or auto")
    count = torch.cuda.device_count()
    if index is None:
        index = torch.cuda.current_device()
    if index >= count:
        raise ConfigError(f"{flag} {text}: this machine has {count} CUDA device{'s' if count > 1 else ''} "
                          f"(cuda:0{f'..cuda:{count - 1}' if count > 1 else ''})")
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    return torch.device("cuda", index)


def device_string(spec: Any = "auto") -> str:
    """``resolve_device`` as the string libraries such as sentence-transformers take ("cpu", "cuda:0")."""
    return str(resolve_device(spec))


def describe_device(device) -> str:
    """What a run records: "cpu", or "cuda:0 (NVIDIA H100 80GB HBM3)"."""
    import torch

    device = torch.device(device)
    if device.type == "cuda" and torch.cuda.is_available():
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return str(device)


def model_device(model):
    """The device of ``model``'s weights (its first parameter, else buffer; CPU when it has none)."""
    import torch

    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")


def rng_devices(device) -> list[int]:
    """The CUDA devices whose generator ``torch.random.fork_rng`` must save for work on ``device``."""
    import torch

    device = torch.device(device)
    if device.type != "cuda":
        return []
    return [device.index if device.index is not None else torch.cuda.current_device()]


def map_tensors(value: Any, fn, memo: dict[int, Any]) -> Any:
    """``value`` with ``fn`` applied to every tensor in it: tensors, dicts, lists and tuples of
    them, and objects that define ``apply_tensors(fn)`` (moved in place). A tensor reached twice
    (one graph stored under two names) is converted once, so the names still share it.
    Parameters are left alone: a module converts those itself."""
    import torch

    if isinstance(value, torch.nn.Parameter) or isinstance(value, torch.nn.Module):
        return value
    if isinstance(value, torch.Tensor):
        key = id(value)
        if key not in memo:
            memo[key] = fn(value)
        return memo[key]
    if type(value) is dict:
        return {k: map_tensors(v, fn, memo) for k, v in value.items()}
    if type(value) in (list, tuple):
        return type(value)(map_tensors(v, fn, memo) for v in value)
    apply = getattr(value, "apply_tensors", None)
    if callable(apply) and not isinstance(value, type):
        if id(value) not in memo:
            memo[id(value)] = value
            apply(lambda t: map_tensors(t, fn, memo))
    return value


def tensors_off_device(module, device=None, dtype=None, skip: tuple[str, ...] = ()) -> list[str]:
    """Paths (``item_graph``, ``pattern.crow``, ``normed['image']``) of the tensors
    ``reachable_tensors`` finds that are not on ``device`` (or, for floating-point tensors, not
    of ``dtype``): what a ``.to()`` left behind."""
    import torch

    device = None if device is None else torch.device(device)

    def wrong(t) -> bool:
        if device is not None and t.device != device:
            return True
        return dtype is not None and t.is_floating_point() and t.dtype != dtype

    return [path for path, tensor in reachable_tensors(module, skip) if wrong(tensor)]


def reachable_tensors(module, skip: tuple[str, ...] = ()) -> list[tuple[str, Any]]:
    """(path, tensor) for every tensor reachable from ``module``: its parameters and buffers, its
    submodules', and whatever their attributes hold (containers and arbitrary objects, walked
    through their ``__dict__``). Attribute names in ``skip`` (e.g. a model's ``host_tensors``)
    are not visited."""
    import torch

    found: list[tuple[str, Any]] = []
    seen: set[int] = set()

    def visit(obj: Any, path: str) -> None:
        if id(obj) in seen or isinstance(obj, (str, bytes, int, float, bool, type(None), type)):
            return
        seen.add(id(obj))
        if isinstance(obj, torch.Tensor):
            found.append((path, obj))
            return
        if isinstance(obj, dict):
            for key, value in obj.items():
                visit(value, f"{path}[{key!r}]")
            return
        if isinstance(obj, (list, tuple, set)):
            for index, value in enumerate(obj):
                visit(value, f"{path}[{index}]")
            return
        if isinstance(obj, torch.nn.Module):
            for name, tensor in [*obj._parameters.items(), *obj._buffers.items()]:
                if tensor is not None:
                    visit(tensor, f"{path}.{name}".lstrip("."))
            for name, child in obj._modules.items():
                visit(child, f"{path}.{name}".lstrip("."))
        for name, value in getattr(obj, "__dict__", {}).items():
            if name in module_internals() or (obj is module and name in skip):
                continue
            visit(value, f"{path}.{name}".lstrip("."))

    visit(module, "")
    return found


@functools.lru_cache(maxsize=1)
def module_internals() -> frozenset[str]:
    """``nn.Module``'s own ``__dict__`` keys (parameter, buffer, hook tables): not model state."""
    import torch

    return frozenset(vars(torch.nn.Module()))

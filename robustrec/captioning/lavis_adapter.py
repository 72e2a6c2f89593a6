"""LAVIS BLIP-2 captioning through a separate Python interpreter.

LAVIS (`salesforce-lavis`) pins transformers < 4.27 and needs torchvision, so it cannot share
robustrec's environment. `LavisCaptioner` runs the standalone script `lavis_caption.py` (shipped in
this package) with a Python the user points to (`--lavis-python`), passes it the items still to
caption, relays its JSON-lines progress to the callback, and reloads the cache it wrote (the same
format as `CaptionCache`). Set up once, for example:

    python -m venv ~/lavis-env && ~/lavis-env/bin/pip install salesforce-lavis
    robustrec captions generate --dataset baby --data-dir DATA --captioner lavis \\
        --lavis-python ~/lavis-env/bin/python
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from robustrec.captioning.cache import CaptionCache, CaptionRunSummary
from robustrec.captioning.captioner import ProgressCallback
from robustrec.errors import ConfigError, DataError, RobustRecError

DEFAULT_LAVIS_MODEL_TYPE = "pretrain_opt2.7b"
SCRIPT_PATH = Path(__file__).with_name("lavis_caption.py")


class LavisCaptioner:
    """Captions items with LAVIS `blip2_opt` run by another interpreter (`python`)."""

    def __init__(
        self,
        python: str | Path,
        *,
        model_type: str = DEFAULT_LAVIS_MODEL_TYPE,
        device: str = "auto",
        prompt: str | None = None,
        max_length: int = 30,
    ) -> None:
        self.python = str(python)
        self.model_type = model_type
        self.device = device
        self.prompt = prompt or None
        self.max_length = max_length

    @property
    def captioner_id(self) -> str:
        """`lavis:blip2_opt/<model type>`, plus `#prompt=<hash>` when prompted."""
        suffix = ""
        if self.prompt:
            suffix = "#prompt=" + hashlib.sha256(self.prompt.encode()).hexdigest()[:8]
        return f"lavis:blip2_opt/{self.model_type}{suffix}"

    def caption_images(self, images: Sequence[Any]) -> list[str]:
        """Not supported: LAVIS runs in another process and works on files (`caption_items`)."""
        raise ConfigError("the LAVIS captioner captions image files only; use caption_items")

    def command(self, items_file: Path, cache: CaptionCache, batch_size: int) -> list[str]:
        """The command line that runs the LAVIS script."""
        cmd = [
            self.python, str(SCRIPT_PATH), "--items", str(items_file), "--cache", str(cache.path),
            "--captioner-id", self.captioner_id, "--dataset", cache.dataset,
            "--fingerprint", cache.fingerprint, "--model-type", self.model_type,
            "--batch-size", str(batch_size), "--max-length", str(self.max_length),
            "--device", self.device, "--flush-every", str(cache.flush_every),
        ]
        return cmd + (["--prompt", self.prompt] if self.prompt else [])

    def caption_items(
        self,
        items: Mapping[int, str],
        cache: CaptionCache,
        *,
        progress: ProgressCallback | None = None,
        batch_size: int = 8,
    ) -> CaptionRunSummary:
        """Caption the items missing from `cache` in the LAVIS interpreter; reload the cache."""
        if cache.captioner_id != self.captioner_id:
            raise DataError(f"cache {cache.path} belongs to {cache.captioner_id!r}, not {self.captioner_id!r}")
        todo = cache.pending(sorted(items))
        if not todo:
            return CaptionRunSummary(captioned=0, skipped=0, cached=len(items))
        cache.flush()
        with tempfile.TemporaryDirectory() as tmp:
            items_file = Path(tmp) / "items.json"
            items_file.write_text(json.dumps({str(i): items[i] for i in todo}))
            final = self._run(self.command(items_file, cache, batch_size), progress)
        cache.reload()
        return CaptionRunSummary(final["captioned"], final["skipped"], len(items) - len(todo))

    def _run(self, cmd: list[str], progress: ProgressCallback | None) -> dict[str, int]:
        """Run the script, relay progress events, return its final counts.

        stderr goes to a temporary file, so a chatty child can never block on a full pipe.
        """
        final: dict[str, int] = {"captioned": 0, "skipped": 0}
        with tempfile.TemporaryFile(mode="w+") as errors:
            try:
                proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errors, text=True)
            except OSError as exc:
                raise ConfigError(f"cannot run LAVIS Python {self.python!r}: {exc.strerror or exc}") from None
            assert proc.stdout is not None
            for line in proc.stdout:
                event = _parse_event(line)
                if event.get("event") == "progress" and progress is not None:
                    progress(int(event["done"]), int(event["total"]))
                elif event.get("event") == "done":
                    final = {"captioned": int(event["captioned"]), "skipped": int(event["skipped"])}
            if proc.wait() != 0:
                errors.seek(0)
                last = (errors.read().strip().splitlines() or ["no error message"])[-1]
                raise RobustRecError(f"LAVIS captioning failed (exit {proc.returncode}): {last}")
        return final


def _parse_event(line: str) -> dict[str, Any]:
    """A JSON progress event, or {} for any other output line (LAVIS logs to stdout too)."""
    try:
        event = json.loads(line)
    except json.JSONDecodeError:
        return {}
    return event if isinstance(event, dict) else {}

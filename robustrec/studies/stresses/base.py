"""What every stress kind is: a typed spec whose fields are its options, ``check()`` and ``run()``.

A kind is one module (``robustrec/studies/stresses/<kind>.py`` or a user's plug-in file) holding
a ``StressSpec`` dataclass decorated with ``@register_stress``:

- ``kind``: the name (``robustrec perturb <kind>``, ``kind = "<kind>"`` in a study's ``[[stress]]``);
- the class docstring: the command's help (first line: the summary in lists and docs);
- one field per option, made with ``option(default, help)``: the flag is the field name with
  dashes (``--neighbour-k``), a bool field is a ``--x/--no-x`` switch, levels are comma lists
  (a string field, read with ``parse_levels``);
- ``repeats``: the default number of draws per level and its help (a ``Repeats``);
- ``check()``: validate the options before anything is loaded (one-line ``ConfigError``s);
- either ``perturbations(checkpoints, data)`` (one ``Perturbation`` per level) and
  ``report_settings(data)`` (what the kind adds to the report's settings, returned), and the
  base ``run`` does the rest; or its own ``run(checkpoints, data, settings, callbacks, device)``;
- ``contract_perturbation(data, strength, encoder)``: a perturbation of the kind at ``strength``
  on a small world, for the stress contract test (``tests/test_stress_plugins.py``).

The shared evaluation options (checkpoints, seed, metric, k, split, report dir, device, ...)
are not a kind's business: the command generator (``robustrec.cli.perturb``) declares them once.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

from robustrec.errors import ConfigError


def parse_levels(text: str, flag: str) -> list[float]:
    """'1e-4,1e-3' -> [1e-4, 1e-3]; anything else is a one-line ConfigError."""
    try:
        values = [float(part) for part in str(text).split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"{flag} must be a number or a comma-separated list of numbers, got {text!r}") from None
    if not values:
        raise ConfigError(f"{flag} needs at least one value")
    return values


def option(default: Any, help: str, *, metavar: str | None = None, path: bool = False,
           required: bool = False) -> Any:
    """A spec field that is also a command-line option: ``help`` is its text; ``metavar`` its
    placeholder; ``path``: the flag takes a path (stored as a string, "" when not given);
    ``required``: the command needs it (the dataclass default still serves study files)."""
    return field(default=default, metadata={"help": help, "metavar": metavar, "path": path, "required": required})


@dataclass(frozen=True)
class Repeats:
    """A kind's default number of draws per level and what one draw is."""

    default: int = 5
    help: str = "Draws per level."


@dataclass
class StressOutcome:
    """The reports of one stress test and what a user should be told beside the tables."""

    reports: list[dict]
    notes: list[str] = field(default_factory=list)


class StressSpec:
    """Base of the per-kind specs (module docstring)."""

    kind: ClassVar[str] = ""
    repeats: ClassVar[Repeats] = Repeats()
    #: where the kind comes from: "robustrec", "entry point <name>" or a plug-in file (set on registration)
    source: ClassVar[str] = "robustrec"

    def check(self) -> "StressSpec":
        return self

    def perturbations(self, checkpoints, data) -> list:
        """One ``Perturbation`` per level (kinds that use the base ``run``)."""
        raise NotImplementedError(f"stress kind {self.kind!r} defines neither perturbations() nor run()")

    def report_settings(self, data) -> dict:
        """What this kind adds to the report's settings (``title``, ``description``, ``file_tag`` ...)."""
        return {"title": self.kind}

    def run(self, checkpoints, data, settings, callbacks=None, device: str | None = None) -> StressOutcome:
        """Clean + R perturbed evaluations per level of every checkpoint, as one report."""
        from robustrec.studies.runner import run_study

        chosen = dataclasses.replace(settings, extra_settings=self.report_settings(data))
        return StressOutcome([run_study(checkpoints, data, self.perturbations(checkpoints, data), chosen,
                                        callbacks)])

    @classmethod
    def contract_perturbation(cls, data, strength: float, encoder: Callable[[str, int], Any]):
        """A perturbation of this kind at ``strength`` on ``data`` (a small synthetic world) for the
        stress contract; ``encoder(modality, dim)`` gives a deterministic stand-in encoder."""
        raise NotImplementedError(f"stress kind {cls.kind!r} has no contract_perturbation")

    def stress_modalities(self) -> list[str]:
        """The item modalities the dataset must have for this stress (a study checks them first)."""
        return []

    @classmethod
    def summary(cls) -> str:
        """The first line of the kind's docstring."""
        return (cls.__doc__ or cls.kind).strip().splitlines()[0].strip()


def spec_options(cls: type[StressSpec]) -> list[dataclasses.Field]:
    """The fields of a kind's spec that are options (all its dataclass fields)."""
    return [f for f in dataclasses.fields(cls) if f.init]


def flag_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def options_markdown(cls: type[StressSpec], shared: str = "") -> str:
    """The Markdown section of one kind: summary, description, and a table of its options
    (flag, default, help) generated from the spec's fields; ``shared``: a line about the options
    every kind takes."""
    import typing

    doc = (cls.__doc__ or "").strip().splitlines()
    body = " ".join(line.strip() for line in doc[1:] if line.strip())
    hints = typing.get_type_hints(cls)
    lines = [f"## {cls.kind}", "", doc[0].strip() if doc else cls.kind, ""]
    if body:
        lines += [body, ""]
    lines += [f"`robustrec perturb {cls.kind} [CHECKPOINT]... [OPTIONS]`; in a study, `[[stress]]` with "
              f"`kind = \"{cls.kind}\"` and the same options (dashes or underscores).", "",
              "| option | type | default | what it does |", "|---|---|---|---|"]
    for f in spec_options(cls):
        kind = hints[f.name]
        inner = [k for k in typing.get_args(kind) if k is not type(None)]
        base = inner[0] if inner else kind
        name = "path" if f.metadata.get("path") else getattr(base, "__name__", str(base))
        flag = flag_name(f.name)
        if base is bool:
            flag = f"{flag} / --no-{flag[2:]}"
        default = "required" if f.metadata.get("required") else ("–" if f.default in (None, "") else f"`{f.default}`")
        text = f.metadata.get("help", "").replace("|", "\\|")
        lines.append(f"| `{flag}` | {name} | {default} | {text} |")
    lines.append(f"| `--repeats` | int | `{cls.repeats.default}` | {cls.repeats.help} |")
    if shared:
        lines += ["", shared]
    return "\n".join(lines) + "\n"

"""Rich tables of robustness reports (built here, printed by the CLI).

Each table comes in two layouts, chosen when it is printed: the wide one (one row per checkpoint
and level) when it fits the console without wrapping a value, else a narrow one (one block per
checkpoint or MG pair, two-line cells) that fits 80 columns. No layout cuts a value short.
"""

from __future__ import annotations

from rich.cells import cell_len
from rich.console import Group
from rich.measure import Measurement
from rich.table import Column, Table
from rich.text import Text

from robustrec.reports.gains import all_mg_gains, metric_key

LABELS = {"recall": "REC", "precision": "PREC", "map": "MAP", "ndcg": "NDCG"}
GREEK = {"sigma": "σ", "rate": "rate"}
UNBOUNDED = 100_000


def metric_label(metric: str, k: int) -> str:
    return f"{LABELS.get(metric, metric)}@{k}"


def _num(value, fmt: str = ".4f", missing: str = "–") -> str:
    return missing if value is None else format(value, fmt)


def _interval(ci, fmt: str = ".2f") -> str:
    low, high = ci if ci else (None, None)
    return "–" if low is None or high is None else f"[{low:{fmt}}, {high:{fmt}}]"


def _dz(test: dict | None) -> str:
    """"d_z +0.12" (the standardized paired effect), "" when the test has none."""
    value = (test or {}).get("d_z")
    return "" if value is None else f"d_z {value:+.2f}"


def _power(test: dict | None) -> str:
    """"underpowered" for a non-significant test that could not detect a large effect, else ""."""
    test = test or {}
    p_value = test.get("p_value")
    return "underpowered" if test.get("power") == "underpowered" and (p_value is None or p_value >= 0.05) else ""


def _p(value) -> str:
    if value is None:
        return "–"
    return "<1e-4" if value < 1e-4 else f"{value:.4f}"


class Fitted:
    """Renders ``wide`` when ``probe`` (``wide`` minus prose cells that may wrap) fits, else ``narrow``."""

    def __init__(self, wide: Table, narrow, probe: Table | None = None) -> None:
        self.wide, self.narrow, self.probe = wide, narrow, probe or wide

    def __rich_console__(self, console, options):
        unbounded = options.update_width(UNBOUNDED)  # a table measures at most the width it is offered
        fits = Measurement.get(console, unbounded, self.probe).maximum <= options.max_width
        yield self.wide if fits else self.narrow

    def __rich_measure__(self, console, options):
        narrow, wide = Measurement.get(console, options, self.narrow), Measurement.get(console, options, self.wide)
        return Measurement(min(narrow.minimum, wide.minimum), wide.maximum)


def _blocks(title: str, columns: list[tuple[str, str]], blocks: list[tuple[Text, list[tuple[str, ...]]]]) -> Group:
    """Narrow layout: ``title``, then per block its heading line and a table of its rows.

    Every block's table gets the same column widths (the widest cell line of any block), so the
    blocks line up like one table; cells fold rather than lose characters on very narrow consoles.
    """
    return _multi_blocks(title, [columns], [(heading, [rows]) for heading, rows in blocks])


def _multi_blocks(title: str, column_sets: list[list[tuple[str, str]]],
                  blocks: list[tuple[Text, list[list[tuple[str, ...]]]]]) -> Group:
    """``_blocks`` with several tables per block (one per column set, e.g. metrics, then tests):
    a row too wide for 80 columns is split into narrower tables instead of cutting values."""
    all_widths = []
    for index, columns in enumerate(column_sets):
        widths = [max(cell_len(line) for line in header.split("\n")) for header, _ in columns]
        for _, tables in blocks:
            for row in tables[index]:
                widths = [max(w, *(cell_len(line) for line in cell.split("\n"))) for w, cell in zip(widths, row)]
        all_widths.append(widths)
    parts: list = [Text(title)]
    for heading, tables in blocks:
        parts.append(heading)
        for columns, widths, rows in zip(column_sets, all_widths, tables):
            if not rows:
                continue
            table = Table(*(Column(header, justify=justify, min_width=width, overflow="fold")
                            for (header, justify), width in zip(columns, widths)))
            for row in rows:
                table.add_row(*row)
            parts.append(table)
    return Group(*parts)


def plain_table(headers: list[str], rows: list[list[str]], title: str | None = None) -> Table:
    """A table of strings; columns after the first right-justified and never wrapped when they hold
    numbers (a narrow console wraps the text columns, never splits a value such as an interval)."""
    table = Table(title=title, title_justify="left")
    for index, header in enumerate(headers):
        numeric = index > 0 and bool(rows) and all(_numeric(row[index]) for row in rows if row[index])
        table.add_column(header, justify="right" if numeric else "left", no_wrap=bool(numeric))
    for row in rows:
        table.add_row(*row)
    return table


def _numeric(text: str) -> bool:
    try:
        float(text.replace("%", "").replace("±", " ").split()[0].replace(",", ""))
        return True
    except (ValueError, IndexError):
        return False


def _heading(*parts: str | tuple[str, str]) -> Text:
    return Text.assemble(*parts, overflow="fold")


def _level_cells(entry: dict, level: dict, key: str) -> dict:
    """The formatted numbers of one checkpoint at one level, shared by both layouts."""
    summary, test = level["summary"][key], (level.get("user_test") or {}).get(key, {})
    clean = entry["clean"][key]
    ci = [None if v is None or not clean else v / clean * 100 for v in test.get("ci95", [None, None])]
    flat = level.get("flatness") or {}
    rise = flat.get("loss_rise")
    return {"strength": f"{level['strength']:g}", "mean": f"{summary['mean']:.4f}",
            "std": f"± {summary['std']:.4f}", "drop": _num(summary["drop_pct"], ".2f"), "ci": _interval(ci),
            "p": _p(test.get("p_value")), "d_z": _dz(test), "rise": "–" if not rise else f"{rise['mean']:.2e}",
            "rise_std": "" if not rise else f"± {rise['std']:.1e}", "sharp": _num(flat.get("rho_sharpness"), ".2e")}


def results_table(entries: list[dict], metric: str, k: int, strength_name: str, title: str) -> Fitted:
    """One row per checkpoint and level: clean, perturbed mean ± std, drop %, test, flatness.

    A checkpoint the perturbation cannot reach (``entry["unaffected"]``, e.g. an ID-only model
    under caption injection) gets one row with its clean metric and the reason instead.

    drop % [95% CI]: relative drop of the mean, with the t-interval of the per-user paired
    difference scaled by the clean value; p (users): paired t-test over users; loss rise:
    mean ± std training-loss increase under weight noise of the same σ; ρ-sharp: one-step
    ρ-sharpness (see ``robustrec.flatness``).
    """
    key = metric_key(metric, k)
    return Fitted(_wide_results(entries, key, metric_label(metric, k), strength_name, title),
                  _narrow_results(entries, key, metric_label(metric, k), strength_name, title),
                  _wide_results(entries, key, metric_label(metric, k), strength_name, title, prose=False))


def _wide_results(entries, key, label, strength_name, title, prose=True) -> Table:
    table = Table(title=title, title_justify="left")
    for column, justify in (("checkpoint", "left"), ("MG", "center"),
                            (GREEK.get(strength_name, strength_name), "right"), (f"clean {label}", "right"),
                            (f"perturbed {label}", "right"), ("drop % [95% CI]", "right"),
                            ("p (users)", "right"), ("loss rise", "right"), ("ρ-sharp", "right")):
        table.add_column(column, justify=justify)
    for entry in entries:
        mg = "yes" if entry["mg"] else "no"
        if entry.get("unaffected") and prose:  # clean metric only; the perturbation cannot reach this model
            table.add_row(entry["name"], mg, "–", _num(entry["clean"][key]), entry["unaffected"],
                          "–", "–", "–", "–")
        for level in entry["levels"]:
            c = _level_cells(entry, level, key)
            table.add_row(entry["name"], mg, c["strength"], _num(entry["clean"][key]), f"{c['mean']} {c['std']}",
                          f"{c['drop']} {c['ci']}", f"{c['p']} {c['d_z']}".strip(), f"{c['rise']} {c['rise_std']}".strip(),
                          c["sharp"])
    return table


def _narrow_results(entries, key, label, strength_name, title) -> Group:
    columns = [(GREEK.get(strength_name, strength_name), "right"), ("perturbed", "right"),
               ("drop % [95% CI]", "right"), ("p (users)", "right"), ("loss rise", "right"), ("ρ-sharp", "right")]
    blocks = []
    for entry in entries:
        heading = _heading("\n", (entry["name"], "bold"), " (MG)" if entry["mg"] else " (no MG)",
                           f" · clean {label} {_num(entry['clean'][key])}")
        if entry.get("unaffected"):
            heading.append(f"\n{entry['unaffected']}")
        rows = []
        for level in entry["levels"]:
            c = _level_cells(entry, level, key)
            rows.append((c["strength"], f"{c['mean']}\n{c['std']}", f"{c['drop']}\n{c['ci']}",
                         f"{c['p']}\n{c['d_z']}".rstrip(),
                         f"{c['rise']}\n{c['rise_std']}".rstrip(), c["sharp"]))
        blocks.append((heading, rows))
    return _blocks(title, columns, blocks)


def gains_table(entries: list[dict], metric: str, k: int, strength_name: str) -> Fitted | None:
    """MG gain per (baseline, MG) pair and level; None when no pair exists."""
    rows = all_mg_gains(entries, [metric_key(metric, k)])
    if not rows:
        return None
    title = (f"Mirror Gradient gain ({metric_label(metric, k)}; drop reduction = base drop − MG drop, pts; "
             f"> 0: MG drops less)")
    return Fitted(_wide_gains(rows, strength_name, title), _narrow_gains(rows, strength_name, title),
                  _wide_gains(rows, strength_name, title, pair_separator=" →\n"))


def _gain_cells(row: dict) -> dict:
    test = row["test"] or {}
    flat = row["flatness"]
    return {"strength": f"{row['strength']:g}", "clean_gain": _num(row["clean_gain_pct"], "+.2f"),
            "base": _num(row["drop_baseline_pct"], ".2f"), "mg": _num(row["drop_mg_pct"], ".2f"),
            "reduction": _num(row["drop_reduction_pts"], "+.2f"), "ci": _interval(test.get("ci95")),
            "p": _p(test.get("p_value")), "d_z": _dz(test), "power": _power(test),
            "rise": ("–",) if flat["baseline"] is None else (f"{flat['baseline']:.2e} /", f"{flat['mg']:.2e}")}


def _wide_gains(rows: list[dict], strength_name: str, title: str, pair_separator: str = " → ") -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("baseline → MG", GREEK.get(strength_name, strength_name), "clean gain %", "drop base %",
                   "drop MG %", "drop reduction (pts)", "95% CI", "p (repeats)", "loss rise base / MG"):
        table.add_column(column, justify="left" if column.startswith("baseline") else "right")
    for row in rows:
        c = _gain_cells(row)
        table.add_row(f"{row['baseline']}{pair_separator}{row['mg']}", c["strength"], c["clean_gain"], c["base"],
                      c["mg"], c["reduction"], c["ci"], " ".join(x for x in (c["p"], c["d_z"], c["power"]) if x),
                      " ".join(c["rise"]))
    return table


def _narrow_gains(rows: list[dict], strength_name: str, title: str) -> Group:
    columns = [(GREEK.get(strength_name, strength_name), "right"), ("drop %\nbase → MG", "right"),
               ("reduction (pts)\n[95% CI]", "right"), ("p\n(repeats)", "right"), ("loss rise\nbase / MG", "right")]
    blocks: dict[tuple[str, str], tuple[Text, list]] = {}
    for row in rows:
        c = _gain_cells(row)
        pair = (row["baseline"], row["mg"])
        if pair not in blocks:
            gain = "–" if row["clean_gain_pct"] is None else f"{row['clean_gain_pct']:+.2f}%"
            blocks[pair] = (_heading("\n", (row["baseline"], "bold"), " → ", (row["mg"], "bold"),
                                     f" · clean gain {gain}"), [])
        blocks[pair][1].append((c["strength"], f"{c['base']} → {c['mg']}", f"{c['reduction']}\n{c['ci']}",
                                "\n".join(x for x in (c["p"], c["d_z"], c["power"]) if x), "\n".join(c["rise"])))
    return _blocks(title, columns, list(blocks.values()))


# --- study reports (``robustrec study report``) ----------------------------------------------------


def study_clean_table(report: dict, title: str) -> Fitted:
    """Clean metrics of a study report: the wide table when it fits, else one block per dataset and
    model with two tables (metrics mean ± std over seeds; grid point, seeds and the test vs plain)."""
    from robustrec.reports.formatting import clean_table, fmt_p, fmt_spread

    headers, rows = clean_table(report)
    wide = plain_table(headers, rows, title=title)
    k = report["key"].split("@")[1]
    names = ["recall", "precision", "map", "ndcg"]
    metrics = [("strategy", "left"), (f"valid\n{report['valid_metric']}", "right"),
               *[(metric_label(n, int(k)), "right") for n in names]]
    tests = [("strategy", "left"), ("grid point", "left"), ("seeds", "right"),
             (f"{report['key']}\nvs plain", "right"), ("p", "right"), (_p_header(report), "right")]
    marked = bool(report.get("baselines"))
    if marked:  # which rows do not beat the study's baselines
        tests.append(("vs\nbaselines", "left"))
    blocks: dict[tuple[str, str], tuple[Text, list, list]] = {}
    for row in report["clean"]:
        key = (row["dataset"], row["model"])
        if key not in blocks:
            blocks[key] = (_heading("\n", (row["model"], "bold"), f" on {row['dataset']}"), [], [])
        test = row.get("vs_plain")
        gain = "" if not test or test.get("gain_pct") is None else f"{test['gain_pct']:+.1f}%"
        point = "\n".join(f"{name}={value}" for name, value in row["point"].items()) or "–"
        two_lines = [fmt_spread(s).replace(" ± ", "\n± ") for s in
                     (row["valid"], *[row["test"].get(f"{n}@{k}", {}) for n in names])]
        blocks[key][1].append((row["strategy"], *two_lines))
        blocks[key][2].append((row["strategy"], point, str(len(row["seeds"])), gain,
                               fmt_p(test["p_value"]) if test else "", _adjusted(test) if test else "",
                               *([(row.get("mark") or "").replace(" ≤", "\n≤").replace(" ?", "\n?")] if marked else [])))
    narrow = _multi_blocks(title, [metrics, tests], [(h, [m, t]) for h, m, t in blocks.values()])
    return Fitted(wide, narrow)


def study_stress_table(report: dict, title: str) -> Fitted:
    """Drops of a study report: the wide table when it fits (prose titles may wrap), else one block
    per dataset, stress and model: rows per level and strategy, every value on at most two lines."""
    from robustrec.reports.formatting import fmt_p, stress_table

    headers, rows = stress_table(report)
    wide = plain_table(headers, rows, title=title)
    # the wide layout when it fits with each stress title wrapped to its longest word
    probe = plain_table(headers, [[cell if i != 1 else "\n".join(cell.split()) for i, cell in enumerate(row)]
                                  for row in rows])
    columns = [("level", "right"), ("strategy", "left"), ("drop %\n[95% CI]", "right"), ("sig.\nseeds", "right"),
               ("drop\nreduction\n(pts)", "right"), (f"p\n{_short(report)} p", "right")]
    blocks: dict[tuple, tuple[Text, list]] = {}
    for row in report["stress"]:
        key = (row["dataset"], row["stress_index"], row["title"], row["model"])
        if key not in blocks:
            blocks[key] = (_heading("\n", f"#{row['stress_index']} {row['title']}", " · ", (row["model"], "bold"),
                                    f" on {row['dataset']}"), [])
        if row.get("unaffected"):
            blocks[key][1].append(("–", row["strategy"], "unaffected by\nconstruction", "", "", ""))
            continue
        drop = row["drop_pct"]
        low, high = drop.get("ci95", [None, None])
        value = "–" if drop["mean"] is None else f"{drop['mean']:.2f}"
        if low is not None:
            value += f"\n[{low:.2f}, {high:.2f}]"
        test = row.get("vs_plain")
        delta = "" if not test or test["mean_difference"] is None else f"{test['mean_difference']:+.2f}"
        p = "" if not test else f"{fmt_p(test['p_value'])}\n{_adjusted(test)}"
        blocks[key][1].append((f"{row['strength']:g}", row["strategy"], value,
                               f"{row['significant_seeds']}/{len(row['per_seed'])}", delta, p))
    return Fitted(wide, _blocks(title, columns, list(blocks.values())), probe)


def _short(report: dict) -> str:
    return {"Benjamini–Hochberg": "BH"}.get(report["correction"], report["correction"])


def _p_header(report: dict) -> str:
    return f"p\n({_short(report)})"


def _adjusted(test: dict) -> str:
    from robustrec.reports.formatting import adjusted_p

    return adjusted_p(test)


class SplitTable:
    """A table of strings that never cuts a value: the whole table when it fits the console, else
    several narrower tables, each repeating the first ``keys`` columns (the row's identity) with as
    many of the other columns as fit; a column too wide even alone folds its cells."""

    def __init__(self, headers: list[str], rows: list[list[str]], title: str | None = None, keys: int = 1) -> None:
        self.headers, self.rows, self.title, self.keys = headers, rows, title, keys

    def _table(self, columns: list[int], title: str | None) -> Table:
        full = plain_table([self.headers[i] for i in columns], [[row[i] for i in columns] for row in self.rows],
                           title=title)
        for column in full.columns:
            column.overflow = "fold"
        return full

    def _fits(self, console, options, table: Table) -> bool:
        return Measurement.get(console, options.update_width(UNBOUNDED), table).maximum <= options.max_width

    def __rich_console__(self, console, options):
        everything = list(range(len(self.headers)))
        if self._fits(console, options, self._table(everything, self.title)):
            yield self._table(everything, self.title)
            return
        keys, rest = everything[:self.keys], everything[self.keys:]
        chunks: list[list[int]] = []
        for index in rest:
            if chunks and self._fits(console, options, self._table(keys + chunks[-1] + [index], None)):
                chunks[-1].append(index)
            else:
                chunks.append([index])
        if self.title:
            yield Text(self.title)
        for chunk in chunks:
            yield self._table(keys + chunk, None)

    def __rich_measure__(self, console, options):
        return Measurement.get(console, options, self._table(list(range(len(self.headers))), self.title))


# --- who and what a stress moves (``evaluation.moves``) ----------------------------------------------


def _move(level: dict, key: str, field: str = "mean", scale: float = 1.0, fmt: str = ".3f") -> str:
    row = (level.get("moves") or {}).get(key) or {}
    value = row.get(field) if field in ("mean", "clean") else (row.get(field) or {}).get("mean")
    return "–" if value is None else format(value * scale, fmt)


def _moves_cells(level: dict, k: int) -> dict:
    def before_after(name, scale=1.0, fmt=".3f"):
        return f"{_move(level, f'{name}@{k}', 'clean', scale, fmt)} → {_move(level, f'{name}@{k}', 'mean', scale, fmt)}"

    moves = level.get("moves") or {}
    groups: dict[str, list[str]] = {}
    for name in sorted({key.split("|", 1)[1] for key in moves if key.startswith(f"recall@{k}|")}, key=_slice_order):
        groups.setdefault(name.split(":", 1)[0], []).append(_move(level, f"recall@{k}|{name}", "drop_pct", 1, ".1f"))
    return {"strength": f"{level['strength']:g}", "jaccard": _move(level, f"jaccard@{k}"),
            "rbo": _move(level, f"rbo@{k}"), "tail": before_after("long_tail_share", 100, ".1f"),
            "gini": before_after("gini"), "popularity": before_after("mean_popularity", 1, ".1f"),
            "shift": (f"{_move(level, f'edited_rank_shift@{k}', fmt='+.2f')} / "
                      f"{_move(level, f'other_rank_shift@{k}', fmt='+.2f')}"
                      if f"other_rank_shift@{k}" in moves else "n/a"),
            "slices": groups}


def _slice_order(name: str) -> tuple:
    group, part = name.split(":", 1)
    return ({"users": 0, "items": 1}.get(group, 2), group,
            {"low": 0, "mid": 1, "high": 2, "with": 0, "without": 1}.get(part, 3))


def _two_layouts(title: str, columns: list[tuple[str, str, str]], cells: list[tuple[dict, tuple[str, ...]]]) -> Fitted:
    """Wide: one row per checkpoint and level ("\n" in a cell becomes " "); narrow: a block per
    checkpoint. ``columns``: (wide header, narrow header, justify)."""
    wide = Table(title=title, title_justify="left")
    wide.add_column("checkpoint", justify="left")
    for header, _, justify in columns:
        wide.add_column(header, justify=justify)
    blocks: dict[str, tuple[Text, list]] = {}
    for entry, row in cells:
        wide.add_row(entry["name"], *(cell.replace("\n", " ") for cell in row))
        heading = _heading("\n", (entry["name"], "bold"), " (MG)" if entry["mg"] else " (no MG)")
        blocks.setdefault(entry["name"], (heading, []))[1].append(row)
    return Fitted(wide, _blocks(title, [(narrow, justify) for _, narrow, justify in columns], list(blocks.values())))


def moves_tables(entries: list[dict], k: int, strength_name: str) -> list[Fitted]:
    """What each level moves, at cut-off ``k`` (means over repeats); [] when no level has moves.

    Rank stability and exposure: Jaccard / RBO of each user's clean and perturbed top-K (1 =
    unchanged); long tail %, Gini, popularity: clean → perturbed; rank shift edited / others:
    mean perturbed − clean rank of the items the stress changed and of the others (> 0: pushed
    down; n/a: the stress changes no particular items). Slices: drop % of recall@K per
    user-activity and item-popularity tercile (low / mid / high) and for items with / without a
    modality's content.
    """
    rows = [(entry, level) for entry in entries for level in entry["levels"] if level.get("moves")]
    if not rows:
        return []
    strength = GREEK.get(strength_name, strength_name)
    cells = [(entry, _moves_cells(level, k)) for entry, level in rows]
    stability = _two_layouts(
        f"What the stress moves: top-{k} lists (means over repeats; rank shift > 0: pushed down)",
        [(strength, strength, "right"), ("Jaccard", "Jaccard", "right"), ("RBO", "RBO", "right"),
         ("long tail % clean → pert.", "long\ntail %", "right"), ("Gini clean → pert.", "Gini", "right"),
         ("popularity clean → pert.", "popu-\nlarity", "right"),
         ("rank shift edited / others", "rank\nshift\nedited\n/ others", "right")],
        [(entry, (c["strength"], c["jaccard"], c["rbo"], c["tail"].replace(" → ", "\n→ "),
                  c["gini"].replace(" → ", "\n→ "), c["popularity"].replace(" → ", "\n→ "),
                  c["shift"].replace(" / ", "\n/ "))) for entry, c in cells])
    groups = sorted({group for _, c in cells for group in c["slices"]}, key=lambda g: _slice_order(g + ":x"))
    parts = {"users": "low / mid / high", "items": "low / mid / high"}
    slices = _two_layouts(
        f"Drop % of REC@{k} by slice (users: training-activity terciles; items: popularity terciles of "
        f"the held-out item; a modality: held-out items with / without its content)",
        [(strength, strength, "right"), *((f"{group} {parts.get(group, 'with / without')}",
                                           f"{group}\n{parts.get(group, 'with / without')}".replace(" / ", "\n/ "),
                                           "right") for group in groups)],
        [(entry, (c["strength"], *(" / ".join(c["slices"].get(group, ["–"])).replace(" / ", "\n/ ")
                                    for group in groups))) for entry, c in cells])
    return [stability, slices]

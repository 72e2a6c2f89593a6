"""Small dataset folders the tests build in a temp folder: the planted synthetic set with a third
modality, and subsets of the real hm catalogue (nothing is ever written into ../shared)."""

import json
import os

import numpy as np


def write_three_modal(data_dir, data, name: str = "tri"):
    """``data`` (interactions + image and text features) as ``data_dir/name/`` with a third modality,
    a seeded 12-d ``audio_feat.npy``; returns the folder."""
    folder = data_dir / name
    folder.mkdir(parents=True)
    users, items = data.train_pairs()
    rows = [(u, i, 0) for u, i in zip(users, items)]
    for label, split in ((1, data.valid), (2, data.test)):
        coo = split.tocoo()
        rows += [(u, i, label) for u, i in zip(coo.row, coo.col)]
    (folder / f"{name}.inter").write_text("userID\titemID\tx_label\n" + "".join(f"{u}\t{i}\t{x}\n" for u, i, x in rows))
    np.save(folder / "image_feat.npy", data.features["image"])
    np.save(folder / "text_feat.npy", data.features["text"])
    rng = np.random.default_rng(3)
    np.save(folder / "audio_feat.npy", rng.standard_normal((data.n_items, 12)).astype(np.float32))
    return folder


def hm_subset_texts_and_purchases(shared_datasets, n_items: int) -> tuple[str, str]:
    """(items.jsonl text, .inter text) of hm's first ``n_items`` articles: their real texts and
    the real purchases of them (other rows dropped)."""
    source = os.path.join(shared_datasets, "hm")
    with open(os.path.join(source, "hm.items.jsonl"), encoding="utf-8") as handle:
        texts = "".join(line for line in handle if json.loads(line)["itemID"] < n_items)
    with open(os.path.join(source, "hm.inter"), encoding="utf-8") as handle:
        header, *rows = handle.read().splitlines()
    item = header.split("\t").index("itemID")
    inter = "\n".join([header, *(r for r in rows if int(r.split("\t")[item]) < n_items)]) + "\n"
    return texts, inter


def write_hm_subset(folder, shared_datasets, n_items: int):
    """``folder`` (named hm) as hm's first ``n_items`` articles: real photos (linked), real texts
    and their real purchases; returns the folder."""
    (folder / "images").mkdir(parents=True)
    for i in range(n_items):
        os.symlink(os.path.join(shared_datasets, "hm", "images", f"{i}.jpg"), folder / "images" / f"{i}.jpg")
    texts, inter = hm_subset_texts_and_purchases(shared_datasets, n_items)
    (folder / "hm.items.jsonl").write_text(texts, encoding="utf-8")
    (folder / "hm.inter").write_text(inter)
    return folder

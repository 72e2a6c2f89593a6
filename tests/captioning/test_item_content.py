"""Item text and image loading from dataset folders, with one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from robustrec.data.content import build_item_text, load_item_images, load_item_texts
from robustrec.errors import DataError



def test_item_text_field_order() -> None:
    record = {"description": "Soft. ", "brand": "Acme", "title": "Blanket",
              "categories": [["Baby", "Nursery"]], "price": 3}
    assert build_item_text(record) == "Blanket. Acme. Baby, Nursery. Soft."
    assert build_item_text({"categories": "Toys"}) == "Toys"


def test_load_item_texts(tmp_path: Path) -> None:
    lines = [{"itemID": 1, "title": "b"}, {"itemID": 0, "title": "a", "brand": "x"}]
    (tmp_path / "d.items.jsonl").write_text("\n".join(json.dumps(r) for r in lines) + "\n\n")
    assert load_item_texts(tmp_path, "d", 3) == {0: "a. x", 1: "b", 2: ""}


@pytest.mark.parametrize(
    ("content", "message"),
    [("{oops", "not valid JSON"), ('{"title": 1}', "itemID"), ('{"itemID": "3"}', "integer"),
     ('{"itemID": 9}', "outside"), ('{"itemID": 0}\n{"itemID": 0}', "duplicate")],
)
def test_bad_item_texts(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "d.items.jsonl").write_text(content)
    with pytest.raises(DataError, match=message):
        load_item_texts(tmp_path, "d", 3)


def test_missing_content_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"d\.items\.jsonl not found"):
        load_item_texts(tmp_path, "d", 3)
    with pytest.raises(DataError, match="d_url.csv"):
        load_item_images(tmp_path, "d")


def test_images_from_csv(tmp_path: Path) -> None:
    (tmp_path / "d_url.csv").write_text("itemID,path\n0,pics/a.png\n1,\n2,/abs/c.jpg\n")
    assert load_item_images(tmp_path, "d") == {0: str(tmp_path / "pics/a.png"), 2: "/abs/c.jpg"}
    (tmp_path / "d_url.csv").write_text("id,url\n0,x\n")
    with pytest.raises(DataError, match="expected columns"):
        load_item_images(tmp_path, "d")


def test_real_baby_url_csv(baby_dir) -> None:
    images = load_item_images(Path(baby_dir) / "baby", "baby")
    assert 7000 < len(images) <= 7050
    assert images[0].startswith("http://")

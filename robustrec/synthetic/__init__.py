"""The built-in synthetic dataset on disk (content floor, floor 2; docs/design.md §4).

``folder`` writes ``<data-dir>/synthetic/`` (interactions and image features from
``robustrec.data.synthetic.make_synthetic``, item texts, images, reference captions and
``text_feat.npy`` made with the real text encoder); ``content`` draws the item texts, images and
reference captions. It lives here, not in ``robustrec.data``, because it needs the text encoder
(``robustrec.features``) and the caption cache (``robustrec.captioning``): loading a dataset
(``robustrec.data.load_dataset``, floor 1) never writes one; commands make the built-in dataset
first with ``robustrec.synthetic.folder.prepare_dataset``.
"""

"""MMRec model files, unchanged: load a ``GeneralRecommender`` subclass written for MMRec and run it
behind robustrec's model contract (``loader.load_mmrec_model_class``; docs/mmrec.md).

robustrec supplies the modules such a file imports (``common.abstract_recommender``,
``common.loss``, ``common.init``, ``common.encoders``, ``utils.utils``) from ``shim/``: its own
implementations of MMRec's documented interface, made importable under those top-level names
only while a file is loaded or a model is constructed.
"""

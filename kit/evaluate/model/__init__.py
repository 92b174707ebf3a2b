"""The model of a run: where it comes from, how it loads, and what it is by content.

``source`` (an mteb-registered name, a local folder or an unregistered hub id), ``load``
(load it and record its identity and embedding settings), ``identity`` (the content digest
of its files, by ``kit.runfolder``'s rule), ``encoder`` (loader, pipeline, pooling and the
prompts each task used), ``new_model`` (mteb's ModelMeta for a model its registry lacks),
``training`` (a fine-tuned folder's training.json: recorded, and checked against the
declared training datasets).
"""

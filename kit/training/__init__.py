"""The trainer's side: the training record a fine-tune writes beside its weights.

``record`` (``TrainingRecorder``: seed, library versions, each training split with its
revision really loaded and content hash, steps, batch size, loss per logging step, the
training code's commit; ``load_split`` loads a dataset split and says what it loaded;
``TrainingRecorder.callback()`` is a transformers ``TrainerCallback`` that fills the steps,
batch size and losses from any transformers or sentence-transformers trainer; ``write``
lays ``training.json`` into the saved model folder). The format and its checks are
``kit.bundle.training``'s; ``evaluate`` of the folder records the file (README, "Beat the
baseline"); it checks the mteb tasks a record names against mteb's own definitions.
Layer 2: may import ``kit.bundle``, ``kit.machine`` and layer 0; nothing imports it but a
user's training script.
"""

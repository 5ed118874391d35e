"""The shared core every stage runs, all of it: errors, params reading and validation, atomic writes,
the console plumbing of stage scripts, the concept names, the npz reader, the CPU kernel pins and what an
entry point does first. What only some stages run lives beside it (``gradmeta.runtime``: threads, seeds,
devices; ``gradmeta.geometry``: image geometry; ``gradmeta.uncertainty.model_calls``: calling a model),
so each stage's deps in dvc.yaml name only code it runs.

Nothing here imports another gradmeta subpackage: arrows point into the core, never out of it.
"""

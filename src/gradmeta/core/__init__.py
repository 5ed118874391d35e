"""The shared core every stage uses: errors, params reading and validation, atomic writes, the
runtime (threads, seeds, devices), the console plumbing of stage scripts, and the concept names.

Nothing here imports another gradmeta subpackage: arrows point into the core, never out of it.
"""

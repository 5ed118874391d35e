"""How gradmeta calls a caller's model: inputs checked (dtype, finite rows, batches gathered), temporary
hooks, and the model's state (modes, buffers, random streams) kept as it was found. Used by the gradient
engine and the detectors, so a deps of the detectors and extract stages only."""

"""The bottom layer: result and option types, audio decoding, VAD, the registry, model files, devices,
metrics and domain errors. Imports nothing of the layers above it and nothing of HTTP."""

"""The torch-free runner: timing, the fork server for fresh processes, ONNX Runtime sessions,
the machine record, progress logs and the bundle runner's entry point.

This folder is copied whole into every bundle and imported there under another name, so its
modules import only the standard library, numpy, onnxruntime and each other (relatively).
"""

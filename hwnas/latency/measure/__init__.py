"""Measuring on this machine: the backends, single-entry modules, ONNX exports made ahead, the
whole networks measured for calibration, and `hwnas profile` itself.
"""

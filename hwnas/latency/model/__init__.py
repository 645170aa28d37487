"""Predicting latency from a table: the table (Parquet I/O, validation, look-ups), the
end-to-end model and its calibration, ONNX Runtime's graph terms, and the penalty `s_dev`.
"""

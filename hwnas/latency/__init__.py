"""Measuring and predicting latency on a device; never imports `hwnas.search`.

`runner/` is the torch-free code a bundle ships, `measure/` measures on this machine,
`model/` predicts from a table, `targets/` handles other devices, `validate` checks the model.
"""

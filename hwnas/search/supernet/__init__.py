"""The supernet and its training: mixed ops, the hypernetwork, the objective and its latency
terms, the one training loop, and the run folder it writes.
"""

"""The architecture itself, read by both `latency` and `search`: the op registry, the search
space and its shapes, the table-row key, genotypes and the network they build.
"""

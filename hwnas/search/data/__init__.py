"""Data sets: readers of every `--dataset` source and the three splits shaped for the space.
"""

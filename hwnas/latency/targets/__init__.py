"""Other devices: the bundle a target measures without torch, importing its results into a
table, and comparing two tables.
"""

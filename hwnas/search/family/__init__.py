"""The trained family: sweeping the hypernetwork, members and their accuracy, caches, pricing
on any table, the pick, the plot and the export.
"""

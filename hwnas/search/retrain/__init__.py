"""Training one chosen architecture (`hwnas train`): the recipe, the loop, the job that writes
the deployable model, and what it starts from.
"""

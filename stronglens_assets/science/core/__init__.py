"""Shared foundations of the science code: units, hashing, array modules, column checks.

Every other ``science`` subpackage may import ``core``; ``core`` imports none of them.
"""

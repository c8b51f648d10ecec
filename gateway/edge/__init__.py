"""The HTTP edge before any route: one normalised request target, header-block limits, protocol
errors as problem+json, and the listener runner that installs them.
"""

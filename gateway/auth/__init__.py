"""Who may call: partner API keys (store, CLI helpers, options), the pre-auth throttle, operator tokens,
and the start-up refusal of default secrets. The filter that applies them is ``gateway/filters/auth.py``.
"""

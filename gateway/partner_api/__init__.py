"""The partner order API: what a partner may send and see of MES orders, the answers we give, and
the OpenAPI document (``gateway/openapi/partner-v1.yaml``) the gateway serves.
"""

"""Black-box tests of the edge defences (docs/security.md: attack → defence → test)."""

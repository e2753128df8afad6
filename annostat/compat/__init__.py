"""Drop-in replacements for other libraries' APIs (``annostat.compat.crowdkit``)."""

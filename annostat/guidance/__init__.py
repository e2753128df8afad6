"""Personalised advice for volunteers, read from any fit folder."""

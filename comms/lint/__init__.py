"""Linter: find internal details and weak wording in customer text, and fix them."""

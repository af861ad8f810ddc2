#!/usr/bin/env python
"""Command-line entry point for the demo OpenID provider (see idp_site/settings.py)."""

import os
import sys


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "idp_site.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()

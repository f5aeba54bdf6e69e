"""DenialHelp landing-page generator: `python build.py build|check|list|... --help`."""

from denialpages.cli import main

if __name__ == "__main__":
    main()

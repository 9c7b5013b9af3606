"""``python -m cascadec`` — same as the ``cascadec`` console script."""

from cascadec.cli import main

if __name__ == "__main__":
    main()
